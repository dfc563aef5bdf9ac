import { api } from '@/lib/api-client'

/** Ask the admin service for a fresh CSRF cookie. */
export function getCsrf(): Promise<string | null> {
  return api.ensureCsrfToken(true)
}
