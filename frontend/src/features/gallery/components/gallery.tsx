import { useEffect, useMemo, useRef } from 'react'
import { Loading, Problem } from '@/components/ui/status'
import { env } from '@/config/env'
import { errorMessage } from '@/lib/api-client'
import { flattenPages, useGalleryProducts } from '../hooks/use-gallery-products'
import { useGalleryParams } from '../hooks/use-gallery-params'
import { useToggleLike } from '../hooks/use-toggle-like'
import { GalleryToolbar } from './gallery-toolbar'
import { ProductCard } from './product-card'

/** Start loading the next page this far before its end scrolls into view. */
const PREFETCH_MARGIN = '600px 0px'

/**
 * Show the shop's products as a responsive grid that refreshes itself, with a search, an order
 * and pages that load as the shopper scrolls (or presses "Load more"). The URL holds the search
 * and order.
 */
export function Gallery({ pollMs = env.GALLERY_POLL_MS }: { pollMs?: number }) {
  const { filter, update } = useGalleryParams()
  const query = useGalleryProducts(filter, pollMs)
  const { pending, toggleLike } = useToggleLike()
  const { data, error, refetch, fetchNextPage, hasNextPage, isFetchingNextPage, isPlaceholderData } = query
  const products = useMemo(() => flattenPages(data), [data])
  const canLoadMore = hasNextPage && !isPlaceholderData && !isFetchingNextPage && !query.isFetchNextPageError
  const sentinel = useLoadWhenVisible(canLoadMore, fetchNextPage)
  const retry = () => void refetch()

  let content
  if (query.isPending) {
    content = <Loading label="Loading products…" />
  } else if (query.isLoadingError) {
    content = (
      <Problem title="We couldn't load the products." onRetry={retry}>
        {errorMessage(error)} We will keep trying every few seconds.
      </Problem>
    )
  } else if (products.length === 0 && !isPlaceholderData) {
    content = filter.q ? (
      <Problem
        variant="light"
        title={`No products match “${filter.q}”.`}
        onRetry={() => update({ q: '' })}
        retryLabel="Clear search"
      >
        Try a shorter or different word.
      </Problem>
    ) : (
      <Problem variant="light" title="No products yet." onRetry={retry} retryLabel="Check again">
        New products show up here automatically.
      </Problem>
    )
  } else {
    content = (
      <>
        {query.isRefetchError && (
          <Problem variant="warning" title="Couldn't refresh the gallery." onRetry={retry}>
            {errorMessage(error)} Showing the products loaded earlier.
          </Problem>
        )}
        <p className="text-body-secondary small mb-2" role="status" aria-live="polite">
          {isPlaceholderData ? 'Searching…' : `Showing ${products.length} ${products.length === 1 ? 'product' : 'products'}`}
        </p>
        <ul
          className={`row row-cols-1 row-cols-sm-2 row-cols-lg-3 row-cols-xl-4 g-3 list-unstyled ${isPlaceholderData ? 'opacity-50' : ''}`}
          aria-label="Products"
          aria-busy={isPlaceholderData}
        >
          {products.map((product) => (
            <li className="col" key={product.id}>
              <ProductCard product={product} busy={pending.has(product.id)} onToggleLike={toggleLike} />
            </li>
          ))}
        </ul>
        {query.isFetchNextPageError && (
          <Problem variant="warning" title="Couldn't load more products." onRetry={() => void fetchNextPage()}>
            {errorMessage(error)}
          </Problem>
        )}
        {hasNextPage && !isPlaceholderData && (
          <div className="d-flex justify-content-center mt-4" ref={sentinel}>
            <button
              type="button"
              className="btn btn-outline-secondary"
              disabled={isFetchingNextPage}
              onClick={() => void fetchNextPage()}
            >
              {isFetchingNextPage ? 'Loading more…' : 'Load more'}
            </button>
          </div>
        )}
      </>
    )
  }

  return (
    <>
      <GalleryToolbar filter={filter} onChange={update} />
      {content}
    </>
  )
}

/**
 * Call load when the returned ref's element comes near the viewport, while enabled.
 *
 * The observer is made again each time enabled turns true, and a new observer reports at once:
 * a page that did not fill the screen is followed by the next without any scrolling.
 * Browsers without IntersectionObserver (and jsdom) keep the button.
 */
function useLoadWhenVisible(enabled: boolean, load: () => unknown) {
  const ref = useRef<HTMLDivElement>(null)
  useEffect(() => {
    const element = ref.current
    if (!enabled || !element || typeof IntersectionObserver === 'undefined') return
    const observer = new IntersectionObserver(
      (entries) => {
        if (!entries.some((entry) => entry.isIntersecting)) return
        // Once per page: the next observer starts when this page has arrived.
        observer.disconnect()
        void load()
      },
      { rootMargin: PREFETCH_MARGIN },
    )
    observer.observe(element)
    return () => observer.disconnect()
  }, [enabled, load])
  return ref
}
