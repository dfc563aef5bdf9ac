import { api } from '@/lib/api-client'
import type { GalleryProduct } from './types'

/** Fetch the shop's products with this shopper's liked flags. */
export function getGalleryProducts(signal?: AbortSignal): Promise<GalleryProduct[]> {
  return api.main.get<GalleryProduct[]>('/flask/api/products', { signal })
}
