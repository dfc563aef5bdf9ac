import { api } from '@/lib/api-client'
import { getCsrf } from './get-csrf'

export type Credentials = { username: string; password: string }

/** Get a CSRF cookie, then open a session with the admin service. */
export async function login(credentials: Credentials): Promise<void> {
  await getCsrf()
  await api.admin.post('/api/auth/login', credentials, { skipAuthEvents: true })
}
