import { api } from '@/lib/api-client'
import type { Product, ProductInput } from './types'

/** Create a product (201). */
export function createProduct(input: ProductInput): Promise<Product> {
  return api.admin.post<Product>('/api/products', input)
}
