import { Link } from 'react-router'
import { ProductsTable } from '@/features/products/components/products-table'

/** List products for admins. */
export function ProductsRoute() {
  return (
    <>
      <title>Products · Admin</title>
      <div className="d-flex flex-wrap align-items-center justify-content-between gap-2">
        <h1 className="h3 mb-0">Products</h1>
        <Link to="/admin/products/create" className="btn btn-primary">
          New product
        </Link>
      </div>
      <ProductsTable />
    </>
  )
}
