import { api } from '@/lib/api-client'

/** Delete a product (204). */
export function deleteProduct(id: number): Promise<void> {
  return api.admin.delete<void>(`/api/products/${id}`)
}
