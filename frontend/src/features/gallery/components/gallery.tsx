import { Loading, Problem } from '@/components/ui/status'
import { env } from '@/config/env'
import { useGallery } from '../hooks/use-gallery'
import { ProductCard } from './product-card'

/** Show the shop's products as a responsive grid that refreshes itself. */
export function Gallery({ pollMs = env.GALLERY_POLL_MS }: { pollMs?: number }) {
  const { status, products, pending, loadError, refreshError, refresh, toggleLike } = useGallery(pollMs)

  if (status === 'loading') return <Loading label="Loading products…" />
  if (status === 'error') {
    return (
      <Problem title="We couldn't load the products." onRetry={refresh}>
        {loadError} We will keep trying every few seconds.
      </Problem>
    )
  }

  return (
    <>
      {refreshError && (
        <Problem variant="warning" title="Couldn't refresh the gallery." onRetry={refresh}>
          {refreshError} Showing the products loaded earlier.
        </Problem>
      )}
      {products.length === 0 ? (
        <Problem variant="light" title="No products yet." onRetry={refresh} retryLabel="Check again">
          New products show up here automatically.
        </Problem>
      ) : (
        <ul className="row row-cols-1 row-cols-sm-2 row-cols-lg-3 row-cols-xl-4 g-3 list-unstyled" aria-label="Products">
          {products.map((product) => (
            <li className="col" key={product.id}>
              <ProductCard product={product} busy={Boolean(pending[product.id])} onToggleLike={toggleLike} />
            </li>
          ))}
        </ul>
      )}
    </>
  )
}
