import { api } from '@/lib/api-client'
import type { Product } from './types'

/** The orderings admin's GET /api/products takes; a leading - sorts descending. */
export const ORDERINGS = ['title', '-title', 'id', '-id', 'likes', '-likes', 'created', '-created'] as const
export type Ordering = (typeof ORDERINGS)[number]
export type SortField = 'title' | 'id' | 'likes' | 'created'

export type ProductQuery = { search: string; ordering: Ordering; limit: number; offset: number }
/** One page: its products, how many match in all, and where the page starts (0-based). */
export type ProductPage = { products: Product[]; total: number; offset: number }

/** Fetch one page of the catalogue and how many products match (X-Total-Count). */
export async function getProductsPage(query: ProductQuery, signal?: AbortSignal): Promise<ProductPage> {
  const params = new URLSearchParams({ ordering: query.ordering, limit: String(query.limit), offset: String(query.offset) })
  if (query.search) params.set('search', query.search)
  const { body, headers } = await api.exchange<Product[]>('admin', `/api/products?${params}`, { signal })
  const products = Array.isArray(body) ? body : []
  const total = Number(headers.get('X-Total-Count'))
  return {
    products,
    total: Number.isFinite(total) && headers.has('X-Total-Count') ? total : products.length,
    offset: query.offset,
  }
}
