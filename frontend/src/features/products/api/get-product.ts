import { api } from '@/lib/api-client'
import type { Product } from './types'

/** Fetch one product by id. */
export function getProduct(id: number, signal?: AbortSignal): Promise<Product> {
  return api.admin.get<Product>(`/api/products/${id}`, { signal })
}
