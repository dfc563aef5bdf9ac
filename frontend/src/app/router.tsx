import { Navigate, Outlet, isRouteErrorResponse, useRouteError, type RouteObject } from 'react-router'
import { AdminLayout } from '@/components/layouts/admin-layout'
import { RootLayout } from '@/components/layouts/root-layout'
import { AuthProvider } from '@/features/auth/components/auth-context'
import { RequireAuth } from '@/features/auth/components/require-auth'
import { CreateProductRoute } from './routes/admin/create-product'
import { DeadLettersRoute } from './routes/admin/dead-letters'
import { EditProductRoute } from './routes/admin/edit-product'
import { ProductsRoute } from './routes/admin/products'
import { GalleryRoute } from './routes/gallery'
import { LoginRoute } from './routes/login'
import { NotFoundRoute } from './routes/not-found'

/** Show an unexpected render error instead of a blank page. */
function RouteError() {
  const error = useRouteError()
  const message = isRouteErrorResponse(error) ? `${error.status} ${error.statusText}` : error instanceof Error ? error.message : ''
  return (
    <div className="container py-4">
      <h1 className="h3">Something went wrong</h1>
      <p className="text-body-secondary">{message}</p>
      <button type="button" className="btn btn-primary" onClick={() => window.location.reload()}>
        Reload the page
      </button>
    </div>
  )
}

/** Only the login and admin pages need the session, so the gallery never calls /api/auth/me. */
function WithAuth() {
  return (
    <AuthProvider>
      <Outlet />
    </AuthProvider>
  )
}

export const routes: RouteObject[] = [
  {
    element: <RootLayout />,
    errorElement: <RouteError />,
    children: [
      { index: true, element: <GalleryRoute /> },
      {
        element: <WithAuth />,
        children: [
          { path: 'login', element: <LoginRoute /> },
          {
            path: 'admin',
            element: (
              <RequireAuth>
                <AdminLayout />
              </RequireAuth>
            ),
            children: [
              { index: true, element: <Navigate to="products" replace /> },
              { path: 'products', element: <ProductsRoute /> },
              { path: 'products/create', element: <CreateProductRoute /> },
              { path: 'products/:id/edit', element: <EditProductRoute /> },
              { path: 'dead-letters', element: <DeadLettersRoute /> },
            ],
          },
        ],
      },
      { path: '*', element: <NotFoundRoute /> },
    ],
  },
]
