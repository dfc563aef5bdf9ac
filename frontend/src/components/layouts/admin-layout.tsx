import { useState } from 'react'
import { NavLink, Outlet, useNavigate } from 'react-router'
import { useToast } from '@/components/ui/toast-context'
import { useAuth } from '@/features/auth/components/auth-context'
import { DeadLettersNavLink } from '@/features/dead-letters/components/dead-letters-nav-link'
import { errorMessage } from '@/lib/api-client'

/** Frame admin pages with their sub-navigation and the signed-in user. */
export function AdminLayout() {
  const auth = useAuth()
  const toast = useToast()
  const navigate = useNavigate()
  const [leaving, setLeaving] = useState(false)

  async function signOut() {
    setLeaving(true)
    try {
      await auth.logout()
      toast.show('info', 'You are signed out.')
      navigate('/login', { replace: true })
    } catch (err) {
      toast.show('danger', `Couldn't sign out: ${errorMessage(err)}`)
      setLeaving(false)
    }
  }

  return (
    <div className="vstack gap-3">
      <div className="d-flex flex-wrap align-items-center justify-content-between gap-2 border-bottom pb-2">
        <nav aria-label="Admin">
          <ul className="nav nav-pills">
            <li className="nav-item">
              <NavLink to="/admin/products" className={({ isActive }) => `nav-link${isActive ? ' active' : ''}`}>
                Products
              </NavLink>
            </li>
            <DeadLettersNavLink />
          </ul>
        </nav>
        <div className="d-flex align-items-center gap-2 small">
          <span>
            Signed in as <strong>{auth.user?.username}</strong>
          </span>
          <button type="button" className="btn btn-sm btn-outline-secondary" onClick={() => void signOut()} disabled={leaving}>
            Sign out
          </button>
        </div>
      </div>
      <Outlet />
    </div>
  )
}
