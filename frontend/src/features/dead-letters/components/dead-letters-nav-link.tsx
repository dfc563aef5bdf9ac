import { NavLink } from 'react-router'
import { useDepth } from '../hooks/use-dead-letters'

/** A navigation item to the workbench, shown only while a dead-letter queue holds messages. */
export function DeadLettersNavLink() {
  const admin = useDepth('admin')
  const main = useDepth('main')
  const total = (admin.data?.depth ?? 0) + (main.data?.depth ?? 0)
  if (total <= 0) return null
  return (
    <li className="nav-item">
      <NavLink to="/admin/dead-letters" className={({ isActive }) => `nav-link d-flex align-items-center gap-2${isActive ? ' active' : ''}`}>
        Dead letters{' '}
        <span className="badge rounded-pill text-bg-danger">
          {total}
          <span className="visually-hidden"> waiting</span>
        </span>
      </NavLink>
    </li>
  )
}
