import { http, HttpResponse } from 'msw'
import { ApiError, NetworkError, createApiClient, describeErrorBody, errorMessage } from './api-client'
import { server } from '@/testing/mocks/server'
import { ORIGIN } from '@/testing/mocks/backend'

const client = createApiClient({ adminBaseUrl: '', mainBaseUrl: '' })

describe('api client', () => {
  it('sends the csrftoken cookie as X-CSRFToken on unsafe admin requests, with credentials', async () => {
    document.cookie = 'csrftoken=abc123; path=/'
    let seen: { token: string | null; credentials: string; contentType: string | null } | null = null
    server.use(
      http.post(`${ORIGIN}/api/products`, async ({ request }) => {
        seen = {
          token: request.headers.get('X-CSRFToken'),
          credentials: request.credentials,
          contentType: request.headers.get('Content-Type'),
        }
        return HttpResponse.json({ id: 1 }, { status: 201 })
      }),
    )
    await expect(client.admin.post('/api/products', { title: 't' })).resolves.toEqual({ id: 1 })
    expect(seen).toEqual({ token: 'abc123', credentials: 'include', contentType: 'application/json' })
  })

  it('fetches a CSRF cookie first when there is none', async () => {
    const calls: string[] = []
    server.use(
      http.get(`${ORIGIN}/api/auth/csrf`, () => {
        calls.push('csrf')
        document.cookie = 'csrftoken=fresh; path=/'
        return HttpResponse.json({ csrfToken: 'fresh' })
      }),
      http.delete(`${ORIGIN}/api/products/4`, ({ request }) => {
        calls.push(`delete:${request.headers.get('X-CSRFToken')}`)
        return new HttpResponse(null, { status: 204 })
      }),
    )
    await expect(client.admin.delete('/api/products/4')).resolves.toBeUndefined()
    expect(calls).toEqual(['csrf', 'delete:fresh'])
  })

  it('sends no CSRF header on safe requests or to the main service', async () => {
    document.cookie = 'csrftoken=abc123; path=/'
    const tokens: (string | null)[] = []
    server.use(
      http.get(`${ORIGIN}/api/products`, ({ request }) => {
        tokens.push(request.headers.get('X-CSRFToken'))
        return HttpResponse.json([])
      }),
      http.post(`${ORIGIN}/flask/api/products/1/like`, ({ request }) => {
        tokens.push(request.headers.get('X-CSRFToken'))
        return HttpResponse.json({ id: 1, likes: 1, liked: true })
      }),
    )
    await client.admin.get('/api/products')
    await client.main.post('/flask/api/products/1/like')
    expect(tokens).toEqual([null, null])
  })

  it('retries once with a fresh token when Django rejects the CSRF token', async () => {
    document.cookie = 'csrftoken=stale; path=/'
    const tokens: (string | null)[] = []
    server.use(
      http.get(`${ORIGIN}/api/auth/csrf`, () => {
        document.cookie = 'csrftoken=rotated; path=/'
        return HttpResponse.json({})
      }),
      http.put(`${ORIGIN}/api/products/2`, ({ request }) => {
        const token = request.headers.get('X-CSRFToken')
        tokens.push(token)
        return token === 'rotated'
          ? HttpResponse.json({ id: 2 }, { status: 202 })
          : HttpResponse.json({ detail: 'CSRF Failed: CSRF token incorrect.' }, { status: 403 })
      }),
    )
    await expect(client.admin.put('/api/products/2', { title: 'x' })).resolves.toEqual({ id: 2 })
    expect(tokens).toEqual(['stale', 'rotated'])
  })

  it('raises ApiError with the status and DRF field errors', async () => {
    document.cookie = 'csrftoken=abc; path=/'
    server.use(
      http.post(`${ORIGIN}/api/products`, () =>
        HttpResponse.json({ title: ['This field may not be blank.'], image: ['Enter a valid URL.'] }, { status: 400 }),
      ),
    )
    const error = await client.admin.post('/api/products', {}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ApiError)
    expect(error).toMatchObject({
      status: 400,
      fieldErrors: { title: ['This field may not be blank.'], image: ['Enter a valid URL.'] },
    })
  })

  it('reads the {"error", "detail"} shape into code and detail', async () => {
    server.use(
      http.post(`${ORIGIN}/flask/api/products/9/like`, () =>
        HttpResponse.json({ error: 'already_liked', detail: 'You already like this.' }, { status: 400 }),
      ),
    )
    const error = await client.main.post('/flask/api/products/9/like').catch((e: unknown) => e)
    expect(error).toMatchObject({ status: 400, code: 'already_liked', detail: 'You already like this.' })
  })

  it('reports 401/403 from the admin API to unauthorized listeners, unless told not to', async () => {
    server.use(http.get(`${ORIGIN}/api/products`, () => HttpResponse.json({ detail: 'nope' }, { status: 403 })))
    const listener = vi.fn()
    const unsubscribe = client.onUnauthorized(listener)
    await expect(client.admin.get('/api/products')).rejects.toBeInstanceOf(ApiError)
    await expect(client.admin.get('/api/products', { skipAuthEvents: true })).rejects.toBeInstanceOf(ApiError)
    unsubscribe()
    expect(listener).toHaveBeenCalledTimes(1)
  })

  it('never shows a proxy\'s HTML error page: a 502 reads as human text', async () => {
    server.use(
      http.get(`${ORIGIN}/flask/api/products`, () =>
        new HttpResponse('<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>nginx</body></html>', {
          status: 502,
          headers: { 'Content-Type': 'text/html' },
        }),
      ),
    )
    const error = await client.main.get('/flask/api/products').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ApiError)
    expect(errorMessage(error)).toBe('The service is unavailable or restarting (502). Try again in a moment.')
    expect(errorMessage(error)).not.toMatch(/</)
  })

  it('keeps a short plain-text body as the message, and says what a 429 means', async () => {
    expect(errorMessage(new ApiError(400, 'Bad Request'))).toBe('Bad Request')
    expect(errorMessage(new ApiError(500, '{"traceback": "..."}'))).toMatch(/server had a problem \(500\)/)
    expect(errorMessage(new ApiError(429, ''))).toMatch(/Too many requests/)
  })

  it('returns the parsed body with the response headers from exchange', async () => {
    server.use(
      http.get(`${ORIGIN}/api/products`, () =>
        HttpResponse.json([{ id: 1 }], { headers: { 'X-Total-Count': '41' } }),
      ),
    )
    const { body, headers } = await client.exchange<unknown[]>('admin', '/api/products?limit=1')
    expect(body).toEqual([{ id: 1 }])
    expect(headers.get('X-Total-Count')).toBe('41')
  })

  it('turns a failed connection into NetworkError', async () => {
    server.use(http.get(`${ORIGIN}/flask/api/products`, () => HttpResponse.error()))
    await expect(client.main.get('/flask/api/products')).rejects.toBeInstanceOf(NetworkError)
  })

  it('joins a configured base URL with the path', async () => {
    const remote = createApiClient({ adminBaseUrl: 'https://admin.example.com', mainBaseUrl: 'https://shop.example.com' })
    server.use(http.get('https://shop.example.com/flask/api/products', () => HttpResponse.json([{ id: 1 }])))
    await expect(remote.main.get('/flask/api/products')).resolves.toEqual([{ id: 1 }])
  })
})

describe('describeErrorBody', () => {
  it('uses the fields object of our error shape and non_field_errors as detail', () => {
    expect(describeErrorBody({ error: 'validation', fields: { title: ['too long'] } })).toEqual({
      code: 'validation',
      detail: null,
      fieldErrors: { title: ['too long'] },
    })
    expect(describeErrorBody({ non_field_errors: ['Bad combo'] })).toEqual({ code: null, detail: 'Bad combo', fieldErrors: {} })
  })
})
