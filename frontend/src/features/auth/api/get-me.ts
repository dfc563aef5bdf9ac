import { ApiError, api } from '@/lib/api-client'
import type { User } from './types'

/** Return the signed-in user, or null when the session is anonymous. */
export async function getMe(): Promise<User | null> {
  try {
    const body = await api.admin.get<Record<string, unknown> | undefined>('/api/auth/me', { skipAuthEvents: true })
    if (!body || body.authenticated === false || body.is_authenticated === false) return null
    const source = (body.user && typeof body.user === 'object' ? body.user : body) as Record<string, unknown>
    return {
      username: typeof source.username === 'string' ? source.username : 'admin',
      is_staff: typeof source.is_staff === 'boolean' ? source.is_staff : undefined,
    }
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) return null
    throw err
  }
}
