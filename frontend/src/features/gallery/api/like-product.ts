import { api } from '@/lib/api-client'
import type { LikeResult } from './types'

/** Like a product as the current shopper. */
export function likeProduct(id: number): Promise<LikeResult> {
  return api.main.post<LikeResult>(`/flask/api/products/${id}/like`)
}

/** Take back the current shopper's like. */
export function unlikeProduct(id: number): Promise<LikeResult> {
  return api.main.delete<LikeResult>(`/flask/api/products/${id}/like`)
}
