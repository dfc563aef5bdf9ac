import { server } from '@/testing/mocks/server'
import { createAdminBackend } from '@/testing/mocks/backend'
import { createDeadLetterBackend } from '@/testing/mocks/dead-letters'
import { ApiError, api } from '@/lib/api-client'
import { getDepth } from './get-depth'
import { dlqRequest, forgetOperatorToken, getOperatorToken } from './request'

beforeEach(() => {
  forgetOperatorToken()
  // The token is a POST to admin: it needs the CSRF cookie admin's backend hands out.
  server.use(...createAdminBackend({ signedIn: true }).handlers)
})

describe('operator token', () => {
  it('is reused until 30 s before it expires, then fetched again', async () => {
    const dlq = createDeadLetterBackend({ tokenSeconds: 300 })
    server.use(...dlq.handlers)
    let now = 1_000_000
    const clock = () => now
    expect(await getOperatorToken(clock)).toBe('token-1')
    now += 269_000
    expect(await getOperatorToken(clock)).toBe('token-1')
    now += 2_000
    expect(await getOperatorToken(clock)).toBe('token-2')
    const posts = dlq.state.requests.filter((r) => r.service === 'token')
    expect(posts).toHaveLength(2)
  })

  it('is asked for once when several calls need it at the same time', async () => {
    const dlq = createDeadLetterBackend()
    server.use(...dlq.handlers)
    const tokens = await Promise.all([getOperatorToken(), getOperatorToken(), getOperatorToken()])
    expect(tokens).toEqual(['token-1', 'token-1', 'token-1'])
    expect(dlq.state.issued).toEqual(['token-1'])
  })

  it('is sent with a CSRF token, and main gets it as a bearer token', async () => {
    const dlq = createDeadLetterBackend()
    server.use(...dlq.handlers)
    const { http, HttpResponse } = await import('msw')
    const { ORIGIN } = await import('@/testing/mocks/backend')
    const seen: (string | null)[] = []
    server.use(
      http.post(`${ORIGIN}/api/auth/operator-token`, ({ request }) => {
        seen.push(request.headers.get('X-CSRFToken'))
        return HttpResponse.json({ token: 't', token_type: 'Bearer', expires_in: 300 })
      }),
      http.get(`${ORIGIN}/flask/api/dead-letters/depth`, ({ request }) =>
        HttpResponse.json({ queue: 'main.dlq', depth: request.headers.get('Authorization') === 'Bearer t' ? 4 : -1 }),
      ),
    )
    expect(await dlqRequest('main', '/depth')).toEqual({ queue: 'main.dlq', depth: 4 })
    expect(seen).toEqual(['test-csrf-token'])
  })

  it('is refreshed only once when main keeps answering 401', async () => {
    const dlq = createDeadLetterBackend()
    server.use(...dlq.handlers)
    dlq.state.revoked.add('token-1')
    dlq.state.revoked.add('token-2')
    const err = await dlqRequest('main', '/depth').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect((err as ApiError).status).toBe(401)
    expect(dlq.state.issued).toEqual(['token-1', 'token-2'])
  })

  it('is not needed for admin, which uses the session', async () => {
    const dlq = createDeadLetterBackend()
    server.use(...dlq.handlers)
    expect(await dlqRequest('admin', '/depth')).toEqual({ queue: 'admin.dlq', depth: 0 })
    expect(dlq.state.issued).toEqual([])
  })

  it('is not reported as a lost session when the navigation polls after the session ended', async () => {
    const { http, HttpResponse } = await import('msw')
    const { ORIGIN } = await import('@/testing/mocks/backend')
    const denied = () => HttpResponse.json({ detail: 'Authentication credentials were not provided.' }, { status: 403 })
    server.use(
      http.post(`${ORIGIN}/api/auth/operator-token`, denied),
      http.get(`${ORIGIN}/api/dead-letters/depth`, denied),
    )
    let lost = 0
    const unsubscribe = api.onUnauthorized(() => {
      lost += 1
    })
    try {
      await expect(getDepth('admin')).rejects.toBeInstanceOf(ApiError)
      await expect(getDepth('main')).rejects.toBeInstanceOf(ApiError)
      expect(lost).toBe(0)
      // The page's own calls still report it.
      await expect(dlqRequest('admin', '/depth')).rejects.toBeInstanceOf(ApiError)
      expect(lost).toBe(1)
    } finally {
      unsubscribe()
    }
  })
})
