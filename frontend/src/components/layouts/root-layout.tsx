import { Link, NavLink, Outlet } from 'react-router'

const navClass = ({ isActive }: { isActive: boolean }) => `nav-link${isActive ? ' active fw-semibold' : ''}`

/** Frame every page: skip link, top navigation and the main landmark. */
export function RootLayout() {
  return (
    <>
      <a className="visually-hidden-focusable position-absolute top-0 start-0 p-2 bg-body" href="#main">
        Skip to content
      </a>
      <header>
        <nav className="navbar navbar-expand bg-body-tertiary border-bottom" aria-label="Main">
          <div className="container">
            <Link className="navbar-brand fw-bold" to="/">
              Shop
            </Link>
            <div className="navbar-nav gap-1">
              <NavLink to="/" end className={navClass}>
                Gallery
              </NavLink>
              <NavLink to="/admin/products" className={navClass}>
                Admin
              </NavLink>
            </div>
          </div>
        </nav>
      </header>
      <main id="main" className="container py-4 toast-room" tabIndex={-1}>
        <Outlet />
      </main>
    </>
  )
}
