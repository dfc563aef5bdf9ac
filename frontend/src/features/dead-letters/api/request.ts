import { ApiError, api, type RequestOptions } from '@/lib/api-client'
import type { DlqService } from './types'

/** Where each service serves its dead-letter API. */
export const DLQ_BASE: Record<DlqService, string> = {
  admin: '/api/dead-letters',
  main: '/flask/api/dead-letters',
}

/** Ask for a new operator token this long before the current one runs out. */
export const TOKEN_MARGIN_MS = 30_000

type OperatorToken = { token: string; token_type: string; expires_in: number }
type Cached = { token: string; expiresAt: number }

let cached: Cached | null = null
let pending: Promise<string> | null = null

/** Forget the cached operator token (after main refused it, or between tests). */
export function forgetOperatorToken(): void {
  cached = null
  pending = null
}

/** Return a bearer token for main's operations endpoints, from admin's POST /api/auth/operator-token. */
export async function getOperatorToken(now: () => number = Date.now, quiet = false): Promise<string> {
  if (cached && now() < cached.expiresAt - TOKEN_MARGIN_MS) return cached.token
  // Both panels and the navigation ask at once: one request serves them all.
  if (!pending) {
    pending = api
      .admin.post<OperatorToken>('/api/auth/operator-token', undefined, { skipAuthEvents: quiet })
      .then((body) => {
        const seconds = Number(body?.expires_in)
        cached = { token: body.token, expiresAt: now() + (Number.isFinite(seconds) ? seconds : 0) * 1000 }
        return body.token
      })
      .finally(() => {
        pending = null
      })
  }
  return pending
}

/**
 * Call a service's dead-letter API: admin's with the session (and CSRF), main's with an operator
 * token. A 401 from main means the token expired or a key rotated: get a new one and ask once more.
 */
export async function dlqRequest<T>(service: DlqService, path: string, options: RequestOptions = {}): Promise<T> {
  const target = `${DLQ_BASE[service]}${path}`
  if (service === 'admin') return api.request<T>('admin', target, options)
  const send = (token: string) =>
    api.request<T>('main', target, { ...options, headers: { ...options.headers, Authorization: `Bearer ${token}` } })
  // A background poll (skipAuthEvents) must not report a lost session, not even through the token.
  const quiet = Boolean(options.skipAuthEvents)
  const token = await getOperatorToken(Date.now, quiet)
  try {
    return await send(token)
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err
    if (cached?.token === token) cached = null
    return send(await getOperatorToken(Date.now, quiet))
  }
}
