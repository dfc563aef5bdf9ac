import { api } from '@/lib/api-client'
import type { GalleryFilter, GalleryPage, GalleryProduct } from './types'

/** Products per page: a few screenfuls of cards, small enough to poll every page cheaply. */
export const GALLERY_PAGE_SIZE = 24

/** Query keys of the gallery: every list under ['gallery'], one per search and order. */
export const galleryKeys = {
  all: ['gallery'] as const,
  list: (filter: GalleryFilter) => ['gallery', filter] as const,
}

type PageRequest = GalleryFilter & { cursor: string | null; signal?: AbortSignal }

/** Fetch one page of the shop's products with this shopper's liked flags; X-Next-Cursor names the next. */
export async function getGalleryPage({ q, sort, cursor, signal }: PageRequest): Promise<GalleryPage> {
  const params = new URLSearchParams({ sort, limit: String(GALLERY_PAGE_SIZE) })
  if (q) params.set('search', q)
  if (cursor) params.set('cursor', cursor)
  const { body, headers } = await api.exchange<GalleryProduct[]>('main', `/flask/api/products?${params}`, { signal })
  return { products: Array.isArray(body) ? body : [], nextCursor: headers.get('X-Next-Cursor') || null }
}
