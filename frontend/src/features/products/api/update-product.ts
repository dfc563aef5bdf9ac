import { api } from '@/lib/api-client'
import type { Product, ProductInput } from './types'

/** Replace a product's title and image (202: saved here, reaching the shop shortly). */
export function updateProduct(id: number, input: ProductInput): Promise<Product | undefined> {
  return api.admin.put<Product | undefined>(`/api/products/${id}`, input)
}
