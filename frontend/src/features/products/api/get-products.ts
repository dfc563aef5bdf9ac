import { api } from '@/lib/api-client'
import type { Product } from './types'

type Page = { results: Product[] }

/** Fetch every product (the admin API pages only when asked to). */
export async function getProducts(signal?: AbortSignal): Promise<Product[]> {
  const body = await api.admin.get<Product[] | Page>('/api/products', { signal })
  return Array.isArray(body) ? body : (body?.results ?? [])
}
