import { api } from '@/lib/api-client'

/** End the admin session. */
export async function logout(): Promise<void> {
  await api.admin.post('/api/auth/logout', undefined, { skipAuthEvents: true })
}
