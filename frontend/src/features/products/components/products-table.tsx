import { useState } from 'react'
import { Link } from 'react-router'
import { ConfirmDialog } from '@/components/ui/confirm-dialog'
import { ProductImage } from '@/components/ui/product-image'
import { Loading, Problem } from '@/components/ui/status'
import { useToast } from '@/components/ui/toast-context'
import { env } from '@/config/env'
import { ApiError, errorMessage } from '@/lib/api-client'
import { deleteProduct } from '../api/delete-product'
import type { Product } from '../api/types'
import { useProducts } from '../hooks/use-products'

/** List products with image preview, likes, and edit/delete actions. */
export function ProductsTable({ pollMs = env.GALLERY_POLL_MS }: { pollMs?: number }) {
  const { status, products, error, refresh, removeLocally } = useProducts(pollMs)
  const toast = useToast()
  const [toDelete, setToDelete] = useState<Product | null>(null)
  const [deleting, setDeleting] = useState(false)

  async function confirmDelete() {
    if (!toDelete) return
    setDeleting(true)
    try {
      await deleteProduct(toDelete.id)
      removeLocally(toDelete.id)
      toast.show('success', `Deleted “${toDelete.title}”.`)
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        removeLocally(toDelete.id)
        toast.show('info', `“${toDelete.title}” was already deleted.`)
      } else {
        toast.show('danger', `Couldn't delete “${toDelete.title}”: ${errorMessage(err)}`)
      }
    } finally {
      setDeleting(false)
      setToDelete(null)
    }
  }

  if (status === 'loading') return <Loading label="Loading products…" />
  if (status === 'error') {
    return (
      <Problem title="We couldn't load the products." onRetry={refresh}>
        {error}
      </Problem>
    )
  }

  return (
    <>
      {products.length === 0 ? (
        <Problem variant="light" title="No products yet.">
          <Link to="/admin/products/create">Create the first one</Link>.
        </Problem>
      ) : (
        <div className="table-responsive">
          <table className="table table-hover align-middle">
            <caption className="visually-hidden">Products</caption>
            <thead>
              <tr>
                <th scope="col" style={{ width: 88 }}>
                  Image
                </th>
                <th scope="col">Title</th>
                <th scope="col" className="text-end">
                  Likes
                </th>
                <th scope="col" className="text-end">
                  Actions
                </th>
              </tr>
            </thead>
            <tbody>
              {products.map((p) => (
                <tr key={p.id}>
                  <td>
                    <div style={{ width: 64 }}>
                      <ProductImage src={p.image} alt={`Preview of ${p.title}`} ratio="1x1" className="rounded" />
                    </div>
                  </td>
                  <td className="text-break">{p.title}</td>
                  <td className="text-end" data-testid="likes">
                    {p.likes}
                  </td>
                  <td className="text-end">
                    <div className="d-inline-flex flex-wrap justify-content-end gap-2">
                      <Link to={`/admin/products/${p.id}/edit`} className="btn btn-sm btn-outline-primary" aria-label={`Edit ${p.title}`}>
                        Edit
                      </Link>
                      <button
                        type="button"
                        className="btn btn-sm btn-outline-danger"
                        aria-label={`Delete ${p.title}`}
                        onClick={() => setToDelete(p)}
                      >
                        Delete
                      </button>
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {error && (
        <p className="text-warning-emphasis small" role="status">
          Couldn't refresh: {error}
        </p>
      )}
      <ConfirmDialog
        open={toDelete !== null}
        title="Delete product?"
        confirmLabel="Delete"
        busy={deleting}
        onConfirm={() => void confirmDelete()}
        onCancel={() => setToDelete(null)}
      >
        “{toDelete?.title}” will be removed from the catalogue and the shop. This cannot be undone.
      </ConfirmDialog>
    </>
  )
}
