import { http, HttpResponse, type HttpHandler } from 'msw'
import type { DeadLetterDetail, DeadLetterGroup, DlqService } from '@/features/dead-letters/api/types'
import { ORIGIN } from './backend'

// A function, not a constant: backend.ts imports this module, so ORIGIN is not set yet at load time.
const base = (service: DlqService) => `${ORIGIN}${service === 'admin' ? '/api/dead-letters' : '/flask/api/dead-letters'}`

/** Build a dead letter with sensible defaults (a contract error on product.updated). */
export function makeDeadLetter(overrides: Partial<DeadLetterDetail> = {}): DeadLetterDetail {
  const id = overrides.message_id === undefined ? '7f0c0d1e-0000-4000-8000-000000000001' : overrides.message_id
  return {
    message_id: id,
    type: 'product.updated',
    routing_key: 'product.updated',
    fingerprint: 'a1b2c3d4e5f60718', // pragma: allowlist secret
    reason: 'bad_data',
    exception_type: 'InvalidEvent',
    exception_message: 'data.id: must be an integer',
    where: 'app.messaging.contract:parse',
    attempts: 1,
    first_failed_at: new Date(Date.now() - 3 * 60_000).toISOString(),
    last_failed_at: new Date(Date.now() - 3 * 60_000).toISOString(),
    host: 'worker-1',
    source: 'consumer',
    retried: 0,
    payload: { id, type: 'product.updated', data: { id: 'not-a-number' } },
    body: JSON.stringify({ id, type: 'product.updated', data: { id: 'not-a-number' } }),
    headers: { 'x-failure-reason': 'bad_data' },
    x_death: [],
    ...overrides,
  }
}

type Options = {
  admin?: DeadLetterDetail[]
  main?: DeadLetterDetail[]
  /** Seconds each operator token lives (the real default is 300). */
  tokenSeconds?: number
}

/**
 * Both services' dead-letter APIs in memory, with admin's operator-token issuer: main accepts only
 * a token admin issued and has not expired (state.revoked). `requests` records every call.
 */
export function createDeadLetterBackend(options: Options = {}) {
  const state = {
    queues: { admin: [...(options.admin ?? [])], main: [...(options.main ?? [])] } as Record<DlqService, DeadLetterDetail[]>,
    issued: [] as string[],
    revoked: new Set<string>(),
    /** A service that answers 503 broker_unavailable to everything. */
    brokerDown: new Set<DlqService>(),
    requests: [] as { service: DlqService | 'token'; method: string; path: string; authorization: string | null; body: unknown }[],
    audit: [] as { service: DlqService; action: string; message_id: string | null; reason: string }[],
  }

  function summary(m: DeadLetterDetail) {
    const rest: Partial<DeadLetterDetail> = { ...m }
    for (const key of ['payload', 'body', 'headers', 'x_death'] as const) delete rest[key]
    return rest
  }

  function groups(list: DeadLetterDetail[]): DeadLetterGroup[] {
    const byFp = new Map<string, DeadLetterGroup>()
    for (const m of list) {
      const g = byFp.get(m.fingerprint)
      if (!g) {
        byFp.set(m.fingerprint, {
          fingerprint: m.fingerprint,
          reason: m.reason,
          exception_type: m.exception_type,
          exception_message: m.exception_message,
          where: m.where,
          event_types: m.type ? [m.type] : [],
          count: 1,
          first_seen: m.first_failed_at,
          last_seen: m.last_failed_at,
        })
        continue
      }
      g.count += 1
      if (m.type && !g.event_types.includes(m.type)) g.event_types.push(m.type)
      if (m.first_failed_at && (!g.first_seen || m.first_failed_at < g.first_seen)) g.first_seen = m.first_failed_at
      if (m.last_failed_at && (!g.last_seen || m.last_failed_at > g.last_seen)) g.last_seen = m.last_failed_at
    }
    return [...byFp.values()]
  }

  async function record(service: DlqService | 'token', request: Request) {
    const text = await request.clone().text()
    state.requests.push({
      service,
      method: request.method,
      path: new URL(request.url).pathname + new URL(request.url).search,
      authorization: request.headers.get('Authorization'),
      body: text ? JSON.parse(text) : undefined,
    })
  }

  /** Refuse like the services do: main without a valid bearer token, either one with the broker down. */
  function refuse(service: DlqService, request: Request) {
    if (service === 'main') {
      const token = (request.headers.get('Authorization') ?? '').replace(/^Bearer /, '')
      if (!state.issued.includes(token) || state.revoked.has(token)) {
        return HttpResponse.json(
          { error: 'unauthorized', detail: 'Token expired.' },
          { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } },
        )
      }
    }
    if (state.brokerDown.has(service)) {
      return HttpResponse.json({ error: 'broker_unavailable', detail: 'The broker did not answer within 3 s.' }, { status: 503 })
    }
    return null
  }

  function select(service: DlqService, body: Record<string, unknown>) {
    const queue = state.queues[service]
    if (typeof body.message_id === 'string') return queue.filter((m) => m.message_id === body.message_id)
    if (typeof body.fingerprint === 'string') return queue.filter((m) => m.fingerprint === body.fingerprint)
    return []
  }

  const notFound = () => HttpResponse.json({ error: 'not_found', detail: 'No dead letter matches.' }, { status: 404 })

  function serviceHandlers(service: DlqService): HttpHandler[] {
    const root = base(service)
    const queueName = `${service}.dlq`
    return [
      http.get(`${root}/depth`, async ({ request }) => {
        await record(service, request)
        return refuse(service, request) ?? HttpResponse.json({ queue: queueName, depth: state.queues[service].length })
      }),
      http.post(`${root}/retry`, async ({ request }) => {
        await record(service, request)
        const refused = refuse(service, request)
        if (refused) return refused
        const chosen = select(service, (await request.json()) as Record<string, unknown>)
        if (!chosen.length) return notFound()
        state.queues[service] = state.queues[service].filter((m) => !chosen.includes(m))
        for (const m of chosen) state.audit.push({ service, action: 'retry', message_id: m.message_id, reason: '' })
        return HttpResponse.json({
          matched: chosen.length,
          retried: chosen.length,
          depth: state.queues[service].length,
          message_ids: chosen.map((m) => m.message_id),
        })
      }),
      ...(['discard', 'archive'] as const).map((action) =>
        http.post(`${root}/${action}`, async ({ request }) => {
          await record(service, request)
          const refused = refuse(service, request)
          if (refused) return refused
          const body = (await request.json()) as Record<string, unknown>
          if (typeof body.reason !== 'string' || !body.reason.trim()) {
            return HttpResponse.json(
              { error: 'invalid', detail: 'reason: This field is required.', fields: { reason: ['This field is required.'] } },
              { status: 400 },
            )
          }
          const chosen = select(service, body)
          if (!chosen.length) return notFound()
          state.queues[service] = state.queues[service].filter((m) => !chosen.includes(m))
          for (const m of chosen) state.audit.push({ service, action, message_id: m.message_id, reason: body.reason })
          const key = action === 'discard' ? 'discarded' : 'archived'
          return HttpResponse.json({ [key]: chosen.length, message_ids: chosen.map((m) => m.message_id) })
        }),
      ),
      http.get(`${root}/:messageId`, async ({ request, params }) => {
        await record(service, request)
        const refused = refuse(service, request)
        if (refused) return refused
        const found = state.queues[service].find((m) => m.message_id === params.messageId)
        return found ? HttpResponse.json(found) : notFound()
      }),
      http.get(root, async ({ request }) => {
        await record(service, request)
        const refused = refuse(service, request)
        if (refused) return refused
        const params = new URL(request.url).searchParams
        const fingerprint = params.get('fingerprint')
        const limit = Number(params.get('limit') ?? 50)
        const offset = Number(params.get('offset') ?? 0)
        const queue = state.queues[service]
        const matching = queue.filter((m) => !fingerprint || m.fingerprint === fingerprint)
        const oldest = queue.map((m) => m.first_failed_at).filter(Boolean).sort()[0] ?? null
        return HttpResponse.json({
          queue: queueName,
          depth: queue.length,
          scanned: queue.length,
          capped: false,
          oldest_at: oldest,
          groups: groups(queue),
          count: matching.length,
          results: matching.slice(offset, offset + limit).map(summary),
        })
      }),
    ]
  }

  const handlers: HttpHandler[] = [
    http.post(`${ORIGIN}/api/auth/operator-token`, async ({ request }) => {
      await record('token', request)
      const token = `token-${state.issued.length + 1}`
      state.issued.push(token)
      return HttpResponse.json({ token, token_type: 'Bearer', expires_in: options.tokenSeconds ?? 300 })
    }),
    ...serviceHandlers('admin'),
    ...serviceHandlers('main'),
  ]

  return { state, handlers }
}
