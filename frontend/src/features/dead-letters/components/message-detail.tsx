import { Loading, Problem } from '@/components/ui/status'
import type { DlqService } from '../api/types'
import { useDeadLetter } from '../hooks/use-dead-letters'
import { dlqErrorMessage, timeAgo } from './format'
import type { Ask } from './service-panel'

function pretty(value: unknown): string {
  return JSON.stringify(value, null, 2)
}

function When({ iso }: { iso: string | null }) {
  if (!iso) return <>unknown</>
  return (
    <time dateTime={iso} title={iso}>
      {timeAgo(iso)}
    </time>
  )
}

/** One dead letter: why it failed, its payload, headers and x-death, and what can be done with it. */
export function MessageDetail({ service, messageId, onAsk }: { service: DlqService; messageId: string; onAsk: Ask }) {
  const query = useDeadLetter(service, messageId)
  if (query.isPending) return <Loading label="Loading the message…" />
  if (query.isError) {
    return (
      <Problem title="Couldn't load this message." onRetry={() => void query.refetch()}>
        {dlqErrorMessage(query.error, service)}
      </Problem>
    )
  }
  const m = query.data
  const selector = { message_id: messageId }
  const what = `message ${messageId} (${m.type ?? 'unknown type'})`
  return (
    <div className="vstack gap-2 border-start border-3 ps-2 mt-2">
      <dl className="dlq-facts small mb-0">
        <dt>Reason</dt>
        <dd>{m.reason}</dd>
        <dt>Exception</dt>
        <dd className="text-break">
          {m.exception_type ?? 'none'}
          {m.exception_message ? `: ${m.exception_message}` : ''}
        </dd>
        {m.where && (
          <>
            <dt>Where</dt>
            <dd className="text-break">
              <code>{m.where}</code>
            </dd>
          </>
        )}
        <dt>Routing key</dt>
        <dd className="text-break">{m.routing_key ?? 'none'}</dd>
        <dt>Attempts</dt>
        <dd>{m.attempts ?? 'unknown'}</dd>
        <dt>First failed</dt>
        <dd>
          <When iso={m.first_failed_at} />
        </dd>
        <dt>Last failed</dt>
        <dd>
          <When iso={m.last_failed_at} />
        </dd>
        <dt>Host</dt>
        <dd className="text-break">{m.host ?? 'unknown'}</dd>
        <dt>Dead-lettered by</dt>
        <dd>{m.source === 'broker' ? 'the broker' : 'the consumer'}</dd>
        {m.retried > 0 && (
          <>
            <dt>Retried</dt>
            <dd>{m.retried === 1 ? 'once' : `${m.retried} times`} before</dd>
          </>
        )}
      </dl>
      <h4 className="h6 mb-0">Payload</h4>
      <pre className="dlq-code" tabIndex={0} aria-label="Payload">
        {m.payload !== null && m.payload !== undefined ? pretty(m.payload) : m.body || '(empty body)'}
      </pre>
      <h4 className="h6 mb-0">Headers</h4>
      <pre className="dlq-code" tabIndex={0} aria-label="Headers">
        {pretty(m.headers ?? {})}
      </pre>
      {m.x_death && m.x_death.length > 0 && (
        <>
          <h4 className="h6 mb-0">x-death</h4>
          <pre className="dlq-code" tabIndex={0} aria-label="x-death">
            {pretty(m.x_death)}
          </pre>
        </>
      )}
      <div className="d-flex flex-wrap gap-2">
        <button type="button" className="btn btn-primary" onClick={() => onAsk({ action: 'retry', selector, count: 1, what })}>
          Retry this message
        </button>
        <button type="button" className="btn btn-outline-secondary" onClick={() => onAsk({ action: 'archive', selector, count: 1, what })}>
          Archive…
        </button>
        <button type="button" className="btn btn-outline-danger" onClick={() => onAsk({ action: 'discard', selector, count: 1, what })}>
          Discard…
        </button>
      </div>
    </div>
  )
}
