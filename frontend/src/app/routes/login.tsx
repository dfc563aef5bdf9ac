import { Navigate, useLocation, useNavigate } from 'react-router'
import { Loading } from '@/components/ui/status'
import { useAuth } from '@/features/auth/components/auth-context'
import { LoginForm } from '@/features/auth/components/login-form'
import { hasDraft } from '@/features/products/hooks/use-draft'

/** Only follow same-app paths, so ?from cannot send people elsewhere. */
function safeFrom(state: unknown): string {
  const from = (state as { from?: unknown } | null)?.from
  return typeof from === 'string' && from.startsWith('/') && !from.startsWith('//') && from !== '/login'
    ? from
    : '/admin/products'
}

/** Sign an admin in and return them to where they were going. */
export function LoginRoute() {
  const auth = useAuth()
  const location = useLocation()
  const navigate = useNavigate()
  const from = safeFrom(location.state)

  if (auth.status === 'checking') return <Loading label="Checking your session…" />
  if (auth.status === 'authenticated') return <Navigate to={from} replace />

  return (
    <div className="row justify-content-center">
      <div className="col-12 col-sm-10 col-md-6 col-lg-4">
        <title>Sign in · Shop</title>
        <h1 className="h3 mb-3">Sign in</h1>
        {hasDraft(from) ? (
          <div className="alert alert-info" role="status">
            Your session ended. Sign in again to go back to your form: what you typed is kept.
          </div>
        ) : (
          <p className="text-body-secondary">Sign in with your admin account to manage products.</p>
        )}
        <LoginForm onSuccess={() => navigate(from, { replace: true })} />
      </div>
    </div>
  )
}
