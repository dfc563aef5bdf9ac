import { env } from '@/config/env'
import { getCookie } from '@/lib/cookies'

export type Service = 'admin' | 'main'
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
export type FieldErrors = Record<string, string[]>

const UNSAFE: ReadonlySet<HttpMethod> = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
export const CSRF_COOKIE = 'csrftoken'
export const CSRF_HEADER = 'X-CSRFToken'

/** An HTTP response that was not 2xx, with whatever the server said about it. */
export class ApiError extends Error {
  readonly status: number
  /** Machine-readable code from {"error": "..."} bodies (e.g. "already_liked"). */
  readonly code: string | null
  readonly detail: string | null
  /** Per-field messages: DRF's {"field": ["msg"]} or our {"fields": {...}}. */
  readonly fieldErrors: FieldErrors
  readonly body: unknown

  constructor(status: number, body: unknown) {
    const { code, detail, fieldErrors } = describeErrorBody(body)
    super(detail ?? code ?? `Request failed with status ${status}`)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.detail = detail
    this.fieldErrors = fieldErrors
    this.body = body
  }
}

/** The request never got an HTTP answer (server down, DNS, CORS, offline). */
export class NetworkError extends Error {
  constructor(cause: unknown) {
    super('Could not reach the server. Check your connection and try again.')
    this.name = 'NetworkError'
    this.cause = cause
  }
}

function asMessages(value: unknown): string[] | null {
  if (typeof value === 'string') return [value]
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[]
  return null
}

/** Return a short plain-text body as a sentence to show; null for markup (a proxy's HTML error page) or a dump. */
export function plainSentence(text: string): string | null {
  const trimmed = text.trim()
  if (!trimmed || trimmed.length > 300 || /[<>{}]/.test(trimmed) || trimmed.includes('\n')) return null
  return trimmed
}

/** Split an error body into code, human detail and field errors. */
export function describeErrorBody(body: unknown): {
  code: string | null
  detail: string | null
  fieldErrors: FieldErrors
} {
  const fieldErrors: FieldErrors = {}
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    return { code: null, detail: typeof body === 'string' ? plainSentence(body) : null, fieldErrors }
  }
  const obj = body as Record<string, unknown>
  const code = typeof obj.error === 'string' ? obj.error : null
  let detail = typeof obj.detail === 'string' ? obj.detail : null
  const fieldsSource =
    obj.fields && typeof obj.fields === 'object' && !Array.isArray(obj.fields)
      ? (obj.fields as Record<string, unknown>)
      : obj
  for (const [key, value] of Object.entries(fieldsSource)) {
    if (fieldsSource === obj && (key === 'error' || key === 'detail')) continue
    const messages = asMessages(value)
    if (!messages) continue
    if (key === 'non_field_errors') detail = detail ?? messages.join(' ')
    else fieldErrors[key] = messages
  }
  return { code, detail, fieldErrors }
}

export type RequestOptions = {
  method?: HttpMethod
  body?: unknown
  signal?: AbortSignal
  /** Do not report 401/403 as "session lost" (login itself, the /me probe). */
  skipAuthEvents?: boolean
  /** Extra request headers (e.g. main's operator token: Authorization: Bearer ...). */
  headers?: Record<string, string>
}

type UnauthorizedListener = () => void

export type ApiClientConfig = { adminBaseUrl: string; mainBaseUrl: string }

/** Create the single fetch wrapper every feature uses. */
export function createApiClient(config: ApiClientConfig) {
  const listeners = new Set<UnauthorizedListener>()
  let csrfFromBody: string | null = null

  /** Join a base URL and a path; an empty base means this page's own origin. */
  function url(service: Service, path: string): string {
    const base = service === 'admin' ? config.adminBaseUrl : config.mainBaseUrl
    return base ? `${base}${path}` : new URL(path, window.location.origin).toString()
  }

  async function parseBody(res: Response): Promise<unknown> {
    if (res.status === 204) return undefined
    const text = await res.text()
    if (!text) return undefined
    const type = res.headers.get('content-type') ?? ''
    if (type.includes('json')) {
      try {
        return JSON.parse(text)
      } catch {
        return text
      }
    }
    return text
  }

  async function rawFetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, init)
    } catch (err) {
      if (err instanceof DOMException && err.name === 'AbortError') throw err
      throw new NetworkError(err)
    }
  }

  /** Make sure a CSRF token exists (Django sets the cookie on GET /api/auth/csrf). */
  async function ensureCsrfToken(force = false): Promise<string | null> {
    const existing = getCookie(CSRF_COOKIE) ?? csrfFromBody
    if (existing && !force) return existing
    const res = await rawFetch(url('admin', '/api/auth/csrf'), {
      method: 'GET',
      credentials: 'include',
      headers: { Accept: 'application/json' },
    })
    const body = await parseBody(res)
    if (!res.ok) throw new ApiError(res.status, body)
    if (body && typeof body === 'object') {
      const b = body as Record<string, unknown>
      const token = b.csrfToken ?? b.csrftoken ?? b.csrf_token
      if (typeof token === 'string') csrfFromBody = token
    }
    // Prefer the cookie: Django rotates it at login and the cookie always holds the latest.
    return getCookie(CSRF_COOKIE) ?? csrfFromBody
  }

  /** Send one request; return the parsed body with the response headers (paging headers live there). */
  async function exchange<T>(
    service: Service,
    path: string,
    options: RequestOptions = {},
    retried = false,
  ): Promise<{ body: T; headers: Headers }> {
    const method = options.method ?? 'GET'
    const headers: Record<string, string> = { Accept: 'application/json', ...options.headers }
    if (options.body !== undefined) headers['Content-Type'] = 'application/json'
    if (service === 'admin' && UNSAFE.has(method)) {
      const token = await ensureCsrfToken()
      if (token) headers[CSRF_HEADER] = token
    }
    const res = await rawFetch(url(service, path), {
      method,
      headers,
      credentials: 'include',
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    })
    const body = await parseBody(res)
    if (res.ok) return { body: body as T, headers: res.headers }

    const error = new ApiError(res.status, body)
    // A stale token (e.g. rotated by a login in another tab) gets one fresh try.
    if (service === 'admin' && res.status === 403 && !retried && /csrf/i.test(error.message) && UNSAFE.has(method)) {
      await ensureCsrfToken(true)
      return exchange<T>(service, path, options, true)
    }
    if (service === 'admin' && (res.status === 401 || res.status === 403) && !options.skipAuthEvents) {
      listeners.forEach((listener) => listener())
    }
    throw error
  }

  async function request<T>(service: Service, path: string, options: RequestOptions = {}): Promise<T> {
    return (await exchange<T>(service, path, options)).body
  }

  return {
    request,
    exchange,
    ensureCsrfToken,
    /** Register a callback for "the admin API refused our session"; returns an unsubscribe. */
    onUnauthorized(listener: UnauthorizedListener): () => void {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    admin: {
      get: <T>(path: string, o?: Omit<RequestOptions, 'method' | 'body'>) => request<T>('admin', path, { ...o, method: 'GET' }),
      post: <T>(path: string, body?: unknown, o?: Omit<RequestOptions, 'method' | 'body'>) =>
        request<T>('admin', path, { ...o, method: 'POST', body }),
      put: <T>(path: string, body?: unknown, o?: Omit<RequestOptions, 'method' | 'body'>) =>
        request<T>('admin', path, { ...o, method: 'PUT', body }),
      delete: <T>(path: string, o?: Omit<RequestOptions, 'method' | 'body'>) =>
        request<T>('admin', path, { ...o, method: 'DELETE' }),
    },
    main: {
      get: <T>(path: string, o?: Omit<RequestOptions, 'method' | 'body'>) => request<T>('main', path, { ...o, method: 'GET' }),
      post: <T>(path: string, body?: unknown, o?: Omit<RequestOptions, 'method' | 'body'>) =>
        request<T>('main', path, { ...o, method: 'POST', body }),
      delete: <T>(path: string, o?: Omit<RequestOptions, 'method' | 'body'>) =>
        request<T>('main', path, { ...o, method: 'DELETE' }),
    },
  }
}

export type ApiClient = ReturnType<typeof createApiClient>

export const api: ApiClient = createApiClient({
  adminBaseUrl: env.ADMIN_API_URL,
  mainBaseUrl: env.MAIN_API_URL,
})

/** Turn any thrown value into a sentence a person can act on. */
export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.detail) return err.detail
    if (err.status === 502 || err.status === 503 || err.status === 504) {
      return `The service is unavailable or restarting (${err.status}). Try again in a moment.`
    }
    if (err.status >= 500) return `The server had a problem (${err.status}). Try again in a moment.`
    if (err.status === 404) return 'Not found.'
    if (err.status === 429) return 'Too many requests. Wait a moment, then try again.'
    return err.code ? `Request failed: ${err.code.replace(/_/g, ' ')}` : err.message
  }
  if (err instanceof Error) return err.message
  return 'Something went wrong.'
}
