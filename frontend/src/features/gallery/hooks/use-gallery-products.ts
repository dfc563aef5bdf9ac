import { keepPreviousData, useInfiniteQuery, useQueryClient, type InfiniteData, type QueryClient } from '@tanstack/react-query'
import { galleryKeys, getGalleryPage } from '../api/get-gallery-products'
import type { GalleryFilter, GalleryPage, GalleryProduct } from '../api/types'
import { likeLedgerFor } from './like-ledger'

export type GalleryData = InfiniteData<GalleryPage, string | null>

/**
 * Page through the gallery for one search and order, refreshing every loaded page every pollMs.
 *
 * TanStack pauses the polling while the tab is hidden (refetchIntervalInBackground is false) and
 * refetches when it is shown again. The previous search's list stays on screen while the next loads.
 */
export function useGalleryProducts(filter: GalleryFilter, pollMs: number) {
  const client = useQueryClient()
  const ledger = likeLedgerFor(client)
  return useInfiniteQuery({
    queryKey: galleryKeys.list(filter),
    queryFn: async ({ pageParam, signal }) => {
      const startedAt = ledger.stamp()
      const page = await getGalleryPage({ ...filter, cursor: pageParam, signal })
      return { ...page, products: ledger.reconcile(page.products, startedAt) }
    },
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.nextCursor,
    refetchInterval: pollMs,
    placeholderData: keepPreviousData,
  })
}

/** The loaded pages as one list; a product that moved between pages while they refreshed shows once. */
export function flattenPages(data: { pages: GalleryPage[] } | undefined): GalleryProduct[] {
  const seen = new Set<number>()
  const products: GalleryProduct[] = []
  for (const page of data?.pages ?? []) {
    for (const product of page.products) {
      if (seen.has(product.id)) continue
      seen.add(product.id)
      products.push(product)
    }
  }
  return products
}

/** Change (or with null, drop) one product in every cached gallery list. */
export function patchGalleryProduct(client: QueryClient, id: number, patch: Partial<GalleryProduct> | null): void {
  client.setQueriesData<GalleryData>({ queryKey: galleryKeys.all }, (data) => {
    if (!data) return data
    let changed = false
    const pages = data.pages.map((page) => {
      if (!page.products.some((p) => p.id === id)) return page
      changed = true
      const products = patch
        ? page.products.map((p) => (p.id === id ? { ...p, ...patch } : p))
        : page.products.filter((p) => p.id !== id)
      return { ...page, products }
    })
    return changed ? { ...data, pages } : data
  })
}
