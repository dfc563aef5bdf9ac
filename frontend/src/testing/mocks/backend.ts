import { http, HttpResponse, type HttpHandler } from 'msw'
import type { GalleryProduct } from '@/features/gallery/api/types'
import type { Product } from '@/features/products/api/types'
import { createDeadLetterBackend } from './dead-letters'

export const ORIGIN = 'http://localhost:3000'

/** Build an admin product with sensible defaults. */
export function makeProduct(overrides: Partial<Product> = {}): Product {
  const id = overrides.id ?? 1
  return {
    id,
    title: `Product ${id}`,
    image: `https://img.example.com/${id}.jpg`,
    likes: 0,
    version: 1,
    created_at: '2026-11-22T03:00:00Z',
    updated_at: '2026-11-22T03:00:00Z',
    ...overrides,
  }
}

/** Build a shop product with sensible defaults. */
export function makeGalleryProduct(overrides: Partial<GalleryProduct> = {}): GalleryProduct {
  const id = overrides.id ?? 1
  return { id, title: `Product ${id}`, image: `https://img.example.com/${id}.jpg`, likes: 0, liked: false, ...overrides }
}

export type RecordedRequest = { method: string; path: string; search: string; headers: Headers; body: unknown }

/**
 * An in-memory admin service good enough for page tests: session auth with a CSRF
 * check, product CRUD with DRF-style validation errors. `requests` records every call.
 */
export function createAdminBackend(options: { products?: Product[]; signedIn?: boolean } = {}) {
  const state = {
    products: [...(options.products ?? [])],
    signedIn: options.signedIn ?? false,
    nextId: Math.max(0, ...(options.products ?? []).map((p) => p.id)) + 1,
    requests: [] as RecordedRequest[],
  }
  const csrfToken = 'test-csrf-token'

  async function record(request: Request) {
    const text = await request.clone().text()
    state.requests.push({
      method: request.method,
      path: new URL(request.url).pathname,
      search: new URL(request.url).search,
      headers: request.headers,
      body: text ? JSON.parse(text) : undefined,
    })
  }

  function guard(request: Request): HttpResponse<{ detail: string }> | null {
    if (!state.signedIn) return HttpResponse.json({ detail: 'Authentication credentials were not provided.' }, { status: 403 })
    if (request.method !== 'GET' && request.headers.get('X-CSRFToken') !== csrfToken) {
      return HttpResponse.json({ detail: 'CSRF Failed: CSRF token missing.' }, { status: 403 })
    }
    return null
  }

  /** Answer like the admin service's exception handler does for a ValidationError. */
  function invalid(fields: Record<string, string[]>) {
    const [field, messages] = Object.entries(fields)[0]
    return HttpResponse.json({ error: 'validation_error', detail: `${field}: ${messages[0]}`, fields }, { status: 400 })
  }

  function validate(body: Record<string, unknown>) {
    const errors: Record<string, string[]> = {}
    const title = typeof body.title === 'string' ? body.title.trim() : ''
    const image = typeof body.image === 'string' ? body.image.trim() : ''
    if (!title) errors.title = ['This field may not be blank.']
    if (!image) errors.image = ['This field may not be blank.']
    return errors
  }

  const handlers: HttpHandler[] = [
    http.get(`${ORIGIN}/api/auth/csrf`, async ({ request }) => {
      await record(request)
      document.cookie = `csrftoken=${csrfToken}; path=/`
      return HttpResponse.json({ csrf_token: csrfToken })
    }),
    http.get(`${ORIGIN}/api/auth/me`, async ({ request }) => {
      await record(request)
      // Like the admin service: 200 either way, {"authenticated": false} for anonymous callers.
      return HttpResponse.json(state.signedIn ? { authenticated: true, username: 'admin', is_staff: true } : { authenticated: false })
    }),
    http.post(`${ORIGIN}/api/auth/login`, async ({ request }) => {
      await record(request)
      if (request.headers.get('X-CSRFToken') !== csrfToken) return HttpResponse.json({ detail: 'CSRF Failed' }, { status: 403 })
      const body = (await request.json()) as { username?: string; password?: string }
      if (body.username !== 'admin' || body.password !== 'secret') {
        return HttpResponse.json(
          { error: 'invalid_credentials', detail: 'Invalid username or password, or the user is not staff.' },
          { status: 400 },
        )
      }
      state.signedIn = true
      return HttpResponse.json({ authenticated: true, username: 'admin', is_staff: true, csrf_token: csrfToken })
    }),
    http.post(`${ORIGIN}/api/auth/logout`, async ({ request }) => {
      await record(request)
      state.signedIn = false
      return HttpResponse.json({ authenticated: false })
    }),
    http.get(`${ORIGIN}/api/products`, async ({ request }) => {
      await record(request)
      const refused = guard(request)
      if (refused) return refused
      // Like admin's catalogue: search (title or id), ordering with ties on id, limit/offset, a total.
      const params = new URL(request.url).searchParams
      const search = (params.get('search') ?? '').toLowerCase()
      const ordering = params.get('ordering') ?? 'id'
      const field = ordering.replace(/^-/, '') as 'title' | 'id' | 'likes' | 'created'
      const key = (p: Product) =>
        field === 'created' ? p.created_at : field === 'title' ? p.title.toLowerCase() : p[field]
      const sign = ordering.startsWith('-') ? -1 : 1
      const matches = state.products
        .filter((p) => !search || p.title.toLowerCase().includes(search) || String(p.id) === search)
        .sort((a, b) => (key(a) < key(b) ? -sign : key(a) > key(b) ? sign : sign * (a.id - b.id)))
      const limit = Number(params.get('limit') ?? 1000)
      const offset = Number(params.get('offset') ?? 0)
      return HttpResponse.json(matches.slice(offset, offset + limit), {
        headers: { 'X-Total-Count': String(matches.length) },
      })
    }),
    http.post(`${ORIGIN}/api/products`, async ({ request }) => {
      await record(request)
      const refused = guard(request)
      if (refused) return refused
      const body = (await request.json()) as Record<string, unknown>
      const errors = validate(body)
      if (Object.keys(errors).length) return invalid(errors)
      const now = new Date().toISOString()
      const product = makeProduct({
        id: state.nextId++,
        title: String(body.title),
        image: String(body.image),
        created_at: now,
        updated_at: now,
      })
      state.products.push(product)
      return HttpResponse.json(product, { status: 201 })
    }),
    http.get(`${ORIGIN}/api/products/:id`, async ({ request, params }) => {
      await record(request)
      const refused = guard(request)
      if (refused) return refused
      const product = state.products.find((p) => p.id === Number(params.id))
      return product ? HttpResponse.json(product) : HttpResponse.json({ detail: 'No Product matches the given query.' }, { status: 404 })
    }),
    http.put(`${ORIGIN}/api/products/:id`, async ({ request, params }) => {
      await record(request)
      const refused = guard(request)
      if (refused) return refused
      const product = state.products.find((p) => p.id === Number(params.id))
      if (!product) return HttpResponse.json({ detail: 'Not found.' }, { status: 404 })
      const body = (await request.json()) as Record<string, unknown>
      const errors = validate(body)
      if (Object.keys(errors).length) return invalid(errors)
      Object.assign(product, { title: body.title, image: body.image, version: product.version + 1 })
      return HttpResponse.json(product, { status: 202 })
    }),
    http.delete(`${ORIGIN}/api/products/:id`, async ({ request, params }) => {
      await record(request)
      const refused = guard(request)
      if (refused) return refused
      const before = state.products.length
      state.products = state.products.filter((p) => p.id !== Number(params.id))
      return state.products.length === before
        ? HttpResponse.json({ detail: 'Not found.' }, { status: 404 })
        : new HttpResponse(null, { status: 204 })
    }),
    // The admin navigation asks both services how many dead letters wait: none, unless a test says so.
    ...createDeadLetterBackend().handlers,
  ]

  return { state, handlers }
}

/**
 * An in-memory main service for gallery tests: GET /flask/api/products with search, sort
 * (id, newest, liked), limit and an opaque keyset cursor (X-Next-Cursor), 400 bad_parameter like
 * the real one, and like/unlike for one shopper. `requests` records each list call's query.
 */
export function createGalleryBackend(options: { products?: GalleryProduct[] } = {}) {
  const state = {
    products: (options.products ?? []).map((p) => ({ ...p })),
    requests: [] as URLSearchParams[],
  }
  const sorts = ['id', 'newest', 'liked']
  const byOrder: Record<string, (a: GalleryProduct, b: GalleryProduct) => number> = {
    id: (a, b) => a.id - b.id,
    newest: (a, b) => b.id - a.id,
    liked: (a, b) => b.likes - a.likes || b.id - a.id,
  }
  const encode = (sort: string, p: GalleryProduct) => btoa(JSON.stringify([sort, p.likes, p.id]))
  const badParameter = (name: string, message: string) =>
    HttpResponse.json({ error: 'bad_parameter', detail: `${name}: ${message}`, fields: { [name]: [message] } }, { status: 400 })

  const handlers: HttpHandler[] = [
    http.get(`${ORIGIN}/flask/api/products`, ({ request }) => {
      const params = new URL(request.url).searchParams
      state.requests.push(params)
      const search = (params.get('search') ?? '').trim().toLowerCase()
      const sort = params.get('sort') ?? 'id'
      if (search.length > 200) return badParameter('search', 'At most 200 characters.')
      if (!sorts.includes(sort)) return badParameter('sort', `Must be one of ${sorts.join(', ')}.`)
      const limit = params.has('limit') ? Number(params.get('limit')) : 1000
      let rows = state.products.filter((p) => p.title.toLowerCase().includes(search)).sort(byOrder[sort])
      const cursor = params.get('cursor')
      if (cursor) {
        const index = rows.findIndex((p) => encode(sort, p) === cursor)
        if (index < 0) return badParameter('cursor', 'Not a cursor this list gave out: start again without it.')
        rows = rows.slice(index + 1)
      }
      const page = rows.slice(0, limit)
      const headers: Record<string, string> = {}
      if (rows.length > limit && params.has('limit')) headers['X-Next-Cursor'] = encode(sort, page[page.length - 1])
      return HttpResponse.json(page, { headers })
    }),
    http.post(`${ORIGIN}/flask/api/products/:id/like`, ({ params }) => {
      const product = state.products.find((p) => p.id === Number(params.id))
      if (!product) return HttpResponse.json({ error: 'not_found', detail: `Product ${params.id} does not exist.` }, { status: 404 })
      if (product.liked) return HttpResponse.json({ error: 'already_liked', detail: `You already like product ${product.id}.` }, { status: 400 })
      Object.assign(product, { liked: true, likes: product.likes + 1 })
      return HttpResponse.json({ id: product.id, likes: product.likes, liked: true })
    }),
    http.delete(`${ORIGIN}/flask/api/products/:id/like`, ({ params }) => {
      const product = state.products.find((p) => p.id === Number(params.id))
      if (!product) return HttpResponse.json({ error: 'not_found', detail: `Product ${params.id} does not exist.` }, { status: 404 })
      if (!product.liked) return HttpResponse.json({ error: 'not_liked', detail: `You do not like product ${product.id}.` }, { status: 404 })
      Object.assign(product, { liked: false, likes: product.likes - 1 })
      return HttpResponse.json({ id: product.id, likes: product.likes, liked: false })
    }),
  ]

  return { state, handlers }
}
