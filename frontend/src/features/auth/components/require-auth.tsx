import type { ReactNode } from 'react'
import { Navigate, useLocation } from 'react-router'
import { Loading, Problem } from '@/components/ui/status'
import { useAuth } from './auth-context'

/** Render children for a signed-in user; otherwise send them to /login and back afterwards. */
export function RequireAuth({ children }: { children: ReactNode }) {
  const auth = useAuth()
  const location = useLocation()

  if (auth.status === 'checking') return <Loading label="Checking your session…" />
  if (auth.status === 'unknown') {
    return (
      <Problem title="We couldn't check whether you are signed in." onRetry={() => void auth.recheck()}>
        {auth.error}
      </Problem>
    )
  }
  if (auth.status === 'anonymous') {
    const from = `${location.pathname}${location.search}${location.hash}`
    return <Navigate to="/login" replace state={{ from }} />
  }
  return <>{children}</>
}
