import { screen, waitFor, within } from '@testing-library/react'
import { http, HttpResponse } from 'msw'
import { server } from '@/testing/mocks/server'
import { ORIGIN, createAdminBackend } from '@/testing/mocks/backend'
import { createDeadLetterBackend, makeDeadLetter } from '@/testing/mocks/dead-letters'
import { renderApp } from '@/testing/test-utils'
import { forgetOperatorToken } from '../api/request'
import type { DeadLetterDetail } from '../api/types'

const badData = (n: number, overrides: Partial<DeadLetterDetail> = {}) =>
  makeDeadLetter({ message_id: `bad-${n}`, ...overrides })

const missingProduct = (n: number) =>
  makeDeadLetter({
    message_id: `missing-${n}`,
    type: 'product.liked',
    routing_key: 'product.liked',
    fingerprint: 'ffee000011112222',
    reason: 'handler_error',
    exception_type: 'IntegrityError',
    exception_message: 'product 42 does not exist',
    where: 'products.handlers:apply_like',
    payload: { id: `missing-${n}`, data: { product_id: 42, likes: 3 } },
    headers: { 'x-failure-reason': 'handler_error', 'x-failure-attempts': 2 },
    x_death: [{ queue: 'admin', reason: 'rejected', count: 1 }],
  })

function setup(queues: { admin?: DeadLetterDetail[]; main?: DeadLetterDetail[] } = {}, tokenSeconds?: number) {
  server.use(...createAdminBackend({ signedIn: true }).handlers)
  const dlq = createDeadLetterBackend({ ...queues, tokenSeconds })
  server.use(...dlq.handlers)
  return dlq
}

function panel(name: 'Admin service' | 'Main service') {
  return screen.findByRole('region', { name })
}

async function group(service: 'Admin service' | 'Main service', title: string) {
  return within(await screen.findByRole('region', { name: service })).findByRole('article', { name: title })
}

beforeEach(() => forgetOperatorToken())

describe('dead letters navigation', () => {
  it('is hidden while both queues are empty', async () => {
    const dlq = setup()
    renderApp('/admin/products')
    await screen.findByRole('link', { name: 'Products' })
    await waitFor(() => expect(dlq.state.requests.filter((r) => r.path.endsWith('/depth'))).toHaveLength(2))
    expect(screen.queryByRole('link', { name: /Dead letters/ })).not.toBeInTheDocument()
  })

  it('shows the total waiting in both queues and leads to the workbench', async () => {
    setup({ admin: [missingProduct(1)], main: [badData(1), badData(2)] })
    const { user, router } = renderApp('/admin/products')
    const link = await screen.findByRole('link', { name: /^Dead letters\s*3\s*waiting$/ })
    await user.click(link)
    await waitFor(() => expect(router.state.location.pathname).toBe('/admin/dead-letters'))
    expect(await screen.findByRole('heading', { level: 1, name: 'Dead letters' })).toBeInTheDocument()
  })

  it('still counts one queue when the other service fails', async () => {
    const dlq = setup({ admin: [missingProduct(1)] })
    dlq.state.brokerDown.add('main')
    renderApp('/admin/products')
    expect(await screen.findByRole('link', { name: /^Dead letters\s*1\s*waiting$/ })).toBeInTheDocument()
  })
})

describe('dead letters workbench', () => {
  it('says the pipeline is healthy when nothing is dead-lettered', async () => {
    setup()
    renderApp('/admin/dead-letters')
    expect(await screen.findByText('No dead letters: every event was applied.')).toBeInTheDocument()
    expect(within(await panel('Admin service')).getByText(/No dead letters here/)).toBeInTheDocument()
    expect(within(await panel('Main service')).getByText(/No dead letters here/)).toBeInTheDocument()
  })

  it('shows both services side by side, grouped, and calls main with one cached operator token', async () => {
    const dlq = setup({ admin: [missingProduct(1)], main: [badData(1), badData(2, { type: 'product.created' })] })
    renderApp('/admin/dead-letters')

    const bad = await group('Main service', 'InvalidEvent: bad_data')
    expect(within(bad).getByText('2 messages')).toBeInTheDocument()
    expect(within(bad).getByText('data.id: must be an integer')).toBeInTheDocument()
    expect(within(bad).getByText('product.updated, product.created')).toBeInTheDocument()
    expect(within(bad).getAllByText('3 min ago')).toHaveLength(2)
    const missing = await group('Admin service', 'IntegrityError: handler_error')
    expect(within(missing).getByText('1 message')).toBeInTheDocument()
    expect(within(await panel('Admin service')).getByText('admin.dlq')).toBeInTheDocument()
    expect(screen.queryByText('No dead letters: every event was applied.')).not.toBeInTheDocument()

    const mainCalls = dlq.state.requests.filter((r) => r.path.startsWith('/flask/'))
    expect(mainCalls.length).toBeGreaterThan(1)
    expect(new Set(mainCalls.map((r) => r.authorization))).toEqual(new Set(['Bearer token-1']))
    expect(dlq.state.requests.filter((r) => r.service === 'token')).toHaveLength(1)
    expect(dlq.state.requests.filter((r) => r.path.startsWith('/api/dead-letters')).every((r) => r.authorization === null)).toBe(true)
  })

  it('lists a group\'s messages and shows a message\'s payload, headers and x-death', async () => {
    setup({ admin: [missingProduct(1), missingProduct(2)] })
    const { user } = renderApp('/admin/dead-letters')
    const item = await group('Admin service', 'IntegrityError: handler_error')
    await user.click(within(item).getByRole('button', { name: 'Show messages' }))
    const details = await within(item).findByRole('button', { name: 'Show details of message missing-2' })
    expect(within(item).getByRole('button', { name: 'Hide messages' })).toHaveAttribute('aria-expanded', 'true')
    await user.click(details)

    const payload = await within(item).findByLabelText('Payload')
    expect(payload.textContent).toBe(JSON.stringify({ id: 'missing-2', data: { product_id: 42, likes: 3 } }, null, 2))
    expect(within(item).getByLabelText('Headers')).toHaveTextContent('"x-failure-attempts": 2')
    expect(within(item).getByLabelText('x-death')).toHaveTextContent('"reason": "rejected"')
    expect(within(item).getAllByText('products.handlers:apply_like', { selector: 'dd code' })).toHaveLength(2)
    await user.click(within(item).getByRole('button', { name: 'Hide details of message missing-2' }))
    expect(within(item).queryByLabelText('Payload')).not.toBeInTheDocument()
  })

  it('pages through a large group', async () => {
    setup({ main: Array.from({ length: 25 }, (_, i) => badData(i + 1)) })
    const { user } = renderApp('/admin/dead-letters')
    const item = await group('Main service', 'InvalidEvent: bad_data')
    await user.click(within(item).getByRole('button', { name: 'Show messages' }))
    expect(await within(item).findByText('1–20 of 25')).toBeInTheDocument()
    expect(within(item).getByRole('button', { name: 'Previous' })).toBeDisabled()
    await user.click(within(item).getByRole('button', { name: 'Next' }))
    expect(await within(item).findByText('21–25 of 25')).toBeInTheDocument()
    expect(within(item).getByRole('button', { name: 'Show details of message bad-21' })).toBeInTheDocument()
    expect(within(item).getByRole('button', { name: 'Next' })).toBeDisabled()
    await user.click(within(item).getByRole('button', { name: 'Previous' }))
    expect(await within(item).findByText('1–20 of 25')).toBeInTheDocument()
  })

  it('retries a whole group after confirmation and announces the result', async () => {
    const dlq = setup({ main: [badData(1), badData(2)], admin: [] })
    const { user } = renderApp('/admin/dead-letters')
    const item = await group('Main service', 'InvalidEvent: bad_data')
    await user.click(within(item).getByRole('button', { name: 'Retry all' }))

    const dialog = screen.getByRole('alertdialog', { name: 'Retry 2 messages?' })
    expect(within(dialog).getByRole('button', { name: 'Cancel' })).toHaveFocus()
    expect(within(dialog).queryByLabelText(/Why/)).not.toBeInTheDocument()
    await user.click(within(dialog).getByRole('button', { name: 'Retry 2 messages' }))

    expect(await screen.findByText("Retried 2 messages from the main service's queue.")).toBeInTheDocument()
    expect(screen.queryByRole('alertdialog')).not.toBeInTheDocument()
    expect(await screen.findByText('No dead letters: every event was applied.')).toBeInTheDocument()
    // The group is gone, so focus lands on the panel's heading instead of nowhere.
    expect(screen.getByRole('heading', { name: 'Main service' })).toHaveFocus()
    const retry = dlq.state.requests.find((r) => r.path === '/flask/api/dead-letters/retry')
    expect(retry?.body).toEqual({ fingerprint: 'a1b2c3d4e5f60718' }) // pragma: allowlist secret
    expect(retry?.authorization).toBe('Bearer token-1')
  })

  it('asks why before discarding one message, and sends the reason', async () => {
    const dlq = setup({ admin: [missingProduct(1), missingProduct(2)] })
    const { user } = renderApp('/admin/dead-letters')
    const item = await group('Admin service', 'IntegrityError: handler_error')
    await user.click(within(item).getByRole('button', { name: 'Show messages' }))
    await user.click(await within(item).findByRole('button', { name: 'Show details of message missing-1' }))
    await user.click(await within(item).findByRole('button', { name: 'Discard…' }))

    const dialog = screen.getByRole('alertdialog', { name: 'Discard 1 message?' })
    const reason = within(dialog).getByLabelText('Why? (required)')
    expect(reason).toHaveFocus()
    await user.click(within(dialog).getByRole('button', { name: 'Discard 1 message' }))
    expect(reason).toHaveAttribute('aria-invalid', 'true')
    expect(reason).toHaveAccessibleDescription(/Say why, so the audit log explains it\./)
    expect(dlq.state.requests.some((r) => r.path.endsWith('/discard'))).toBe(false)

    await user.type(reason, '  Product 42 was deleted on purpose ')
    expect(reason).toHaveAttribute('aria-invalid', 'false')
    await user.keyboard('{Tab}{Tab}{Enter}')
    expect(await screen.findByText("Discarded 1 message from the admin service's queue.")).toBeInTheDocument()
    expect(dlq.state.audit).toEqual([
      { service: 'admin', action: 'discard', message_id: 'missing-1', reason: 'Product 42 was deleted on purpose' },
    ])
    expect(await within(await group('Admin service', 'IntegrityError: handler_error')).findByText('1 message')).toBeInTheDocument()
  })

  it('archives a group of main\'s dead letters with a reason', async () => {
    const dlq = setup({ main: [badData(1), badData(2), badData(3)] })
    const { user } = renderApp('/admin/dead-letters')
    const item = await group('Main service', 'InvalidEvent: bad_data')
    await user.click(within(item).getByRole('button', { name: 'Archive all…' }))
    const dialog = screen.getByRole('alertdialog', { name: 'Archive 3 messages?' })
    await user.type(within(dialog).getByLabelText('Why? (required)'), 'Old contract version')
    await user.click(within(dialog).getByRole('button', { name: 'Archive 3 messages' }))
    expect(await screen.findByText("Archived 3 messages from the main service's queue.")).toBeInTheDocument()
    expect(dlq.state.audit.map((a) => [a.action, a.reason])).toEqual([
      ['archive', 'Old contract version'],
      ['archive', 'Old contract version'],
      ['archive', 'Old contract version'],
    ])
  })

  it('closes the dialog on Escape without doing anything and gives focus back', async () => {
    const dlq = setup({ admin: [missingProduct(1)] })
    const { user } = renderApp('/admin/dead-letters')
    const item = await group('Admin service', 'IntegrityError: handler_error')
    const discard = within(item).getByRole('button', { name: 'Discard all…' })
    await user.click(discard)
    const dialog = screen.getByRole('alertdialog', { name: 'Discard 1 message?' })
    // Tab stays inside the dialog: from the last button back to the reason box, and the other way.
    await user.tab()
    await user.tab()
    expect(within(dialog).getByRole('button', { name: 'Discard 1 message' })).toHaveFocus()
    await user.tab()
    expect(within(dialog).getByLabelText('Why? (required)')).toHaveFocus()
    await user.tab({ shift: true })
    expect(within(dialog).getByRole('button', { name: 'Discard 1 message' })).toHaveFocus()
    await user.keyboard('{Escape}')
    expect(screen.queryByRole('alertdialog')).not.toBeInTheDocument()
    expect(discard).toHaveFocus()
    expect(dlq.state.requests.some((r) => r.method === 'POST' && r.service !== 'token')).toBe(false)
  })

  it('explains a broker outage in the panel, and in the dialog when an action meets one', async () => {
    const dlq = setup({ admin: [missingProduct(1)], main: [badData(1)] })
    dlq.state.brokerDown.add('admin')
    const { user } = renderApp('/admin/dead-letters')
    const problem = await within(await panel('Admin service')).findByRole('alert')
    expect(problem).toHaveTextContent("Couldn't load the admin service's dead letters.")
    expect(problem).toHaveTextContent('cannot reach the message broker (RabbitMQ)')
    expect(problem).toHaveTextContent('Check that RabbitMQ is running, then press Refresh.')

    const item = await group('Main service', 'InvalidEvent: bad_data')
    dlq.state.brokerDown.add('main')
    await user.click(within(item).getByRole('button', { name: 'Retry all' }))
    const dialog = screen.getByRole('alertdialog', { name: 'Retry 1 message?' })
    await user.click(within(dialog).getByRole('button', { name: 'Retry 1 message' }))
    expect(await within(dialog).findByRole('alert')).toHaveTextContent('The main service cannot reach the message broker')
    expect(dialog).toBeInTheDocument()

    // The broker is back: Refresh shows admin's dead letters and says it refreshed.
    dlq.state.brokerDown.clear()
    await user.click(within(dialog).getByRole('button', { name: 'Cancel' }))
    await user.click(screen.getByRole('button', { name: 'Refresh' }))
    expect(await group('Admin service', 'IntegrityError: handler_error')).toBeInTheDocument()
    expect(await screen.findByText('Dead letters refreshed.')).toBeInTheDocument()
  })

  it('gets a new operator token once when main refuses the cached one', async () => {
    const dlq = setup({ main: [badData(1)] })
    const { user } = renderApp('/admin/dead-letters')
    await group('Main service', 'InvalidEvent: bad_data')
    dlq.state.revoked.add('token-1')
    await user.click(screen.getByRole('button', { name: 'Refresh' }))
    await waitFor(() => expect(dlq.state.issued).toEqual(['token-1', 'token-2']))
    await screen.findByText('Dead letters refreshed.')
    const last = dlq.state.requests.filter((r) => r.path.startsWith('/flask/')).at(-1)
    expect(last?.authorization).toBe('Bearer token-2')
    expect(within(await panel('Main service')).queryByRole('alert')).not.toBeInTheDocument()
  })

  it('says what to do when main keeps refusing the token', async () => {
    setup({ admin: [missingProduct(1)] })
    server.use(
      http.get(`${ORIGIN}/flask/api/dead-letters`, () =>
        HttpResponse.json({ error: 'unauthorized', detail: 'Signature verification failed' }, { status: 401 }),
      ),
    )
    renderApp('/admin/dead-letters')
    const problem = await within(await panel('Main service')).findByRole('alert')
    expect(problem).toHaveTextContent('did not accept your operator token')
    expect(await group('Admin service', 'IntegrityError: handler_error')).toBeInTheDocument()
  })

  it('explains a refused operator token (not staff) and a main without keys', async () => {
    setup()
    server.use(
      http.post(`${ORIGIN}/api/auth/operator-token`, () =>
        HttpResponse.json({ detail: 'You do not have permission to perform this action.' }, { status: 403 }),
      ),
    )
    renderApp('/admin/dead-letters')
    expect(await within(await panel('Main service')).findByRole('alert')).toHaveTextContent('Only staff users can work with dead letters.')
  })

  it('explains that main has operations disabled', async () => {
    setup()
    server.use(
      http.get(`${ORIGIN}/flask/api/dead-letters`, () => HttpResponse.json({ error: 'operations_disabled' }, { status: 503 })),
    )
    renderApp('/admin/dead-letters')
    expect(await within(await panel('Main service')).findByRole('alert')).toHaveTextContent('has no operator keys configured')
  })

  it('closes and refreshes when the messages are already gone', async () => {
    setup({ admin: [missingProduct(1)] })
    const { user } = renderApp('/admin/dead-letters')
    const item = await group('Admin service', 'IntegrityError: handler_error')
    server.use(
      http.post(`${ORIGIN}/api/dead-letters/retry`, () => HttpResponse.json({ error: 'not_found', detail: 'gone' }, { status: 404 })),
    )
    await user.click(within(item).getByRole('button', { name: 'Retry all' }))
    await user.click(within(screen.getByRole('alertdialog')).getByRole('button', { name: 'Retry 1 message' }))
    expect(await screen.findByText(/Admin service: Those dead letters are no longer in the queue/)).toBeInTheDocument()
    expect(screen.queryByRole('alertdialog')).not.toBeInTheDocument()
  })

  it('says when a retry republished only part of a group', async () => {
    setup({ admin: [missingProduct(1), missingProduct(2)] })
    server.use(
      http.post(`${ORIGIN}/api/dead-letters/retry`, () =>
        HttpResponse.json({ matched: 2, retried: 1, depth: 1, message_ids: ['missing-1'] }),
      ),
    )
    const { user } = renderApp('/admin/dead-letters')
    const item = await group('Admin service', 'IntegrityError: handler_error')
    await user.click(within(item).getByRole('button', { name: 'Retry all' }))
    await user.click(within(screen.getByRole('alertdialog')).getByRole('button', { name: 'Retry 2 messages' }))
    expect(await screen.findByText(/Retried 1 of 2 messages .* 1 could not be republished/)).toBeInTheDocument()
  })

  it('shows a message without an ID, which only its group can handle', async () => {
    setup({ main: [badData(1, { message_id: null, reason: 'missing_message_id', fingerprint: '0000111122223333' })] })
    const { user } = renderApp('/admin/dead-letters')
    const item = await group('Main service', 'InvalidEvent: missing_message_id')
    await user.click(within(item).getByRole('button', { name: 'Show messages' }))
    expect(await within(item).findByText('Without an ID it can only be handled with its group.')).toBeInTheDocument()
    expect(within(item).getByText('no message ID')).toBeInTheDocument()
  })

  it('reports a message that left the queue before its detail loaded', async () => {
    setup({ admin: [missingProduct(1)] })
    server.use(
      http.get(`${ORIGIN}/api/dead-letters/missing-1`, () => HttpResponse.json({ error: 'not_found', detail: 'gone' }, { status: 404 })),
    )
    const { user } = renderApp('/admin/dead-letters')
    const item = await group('Admin service', 'IntegrityError: handler_error')
    await user.click(within(item).getByRole('button', { name: 'Show messages' }))
    await user.click(await within(item).findByRole('button', { name: 'Show details of message missing-1' }))
    expect(await within(item).findByRole('alert')).toHaveTextContent("Couldn't load this message.")
  })
})

describe('dead letters refresh', () => {
  afterEach(() => vi.useRealTimers())

  it('reads the lists again when the depth changes, not on every tick (a scan holds the letters)', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true })
    const dlq = setup({ admin: [missingProduct(1)] })
    renderApp('/admin/dead-letters')
    await group('Admin service', 'IntegrityError: handler_error')
    const scans = () =>
      dlq.state.requests.filter((r) => r.service === 'admin' && r.method === 'GET' && /^\/api\/dead-letters(\?|$)/.test(r.path))
        .length
    const before = scans()
    const depths = () => dlq.state.requests.filter((r) => r.service === 'admin' && r.path.endsWith('/depth')).length
    const depthsBefore = depths()

    await vi.advanceTimersByTimeAsync(16_000)
    await waitFor(() => expect(depths()).toBeGreaterThan(depthsBefore))
    expect(scans()).toBe(before) // same depth: no scan

    dlq.state.queues.admin.push(badData(7, { fingerprint: '0123456789abcdef', exception_type: 'InvalidEvent' }))
    await vi.advanceTimersByTimeAsync(16_000)
    await group('Admin service', 'InvalidEvent: bad_data')
    expect(scans()).toBeGreaterThan(before)
  })
})
