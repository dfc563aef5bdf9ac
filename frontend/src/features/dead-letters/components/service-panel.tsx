import { useId, useRef, useState } from 'react'
import { Loading, Problem } from '@/components/ui/status'
import { ApiError } from '@/lib/api-client'
import type { Action, DeadLetterGroup, DlqService, Selector } from '../api/types'
import { PAGE_SIZE, useDeadLetterAction, useOverview } from '../hooks/use-dead-letters'
import { ActionDialog } from './action-dialog'
import { SERVICE_LABEL, dlqErrorMessage, messages, timeAgo, verbOf } from './format'
import { MessageDetail } from './message-detail'

/** An action someone asked for and has yet to confirm. */
export type Pending = { action: Action; selector: Selector; count: number; what: string }
export type Ask = (pending: Pending) => void

function groupTitle(group: DeadLetterGroup): string {
  return group.exception_type ? `${group.exception_type}: ${group.reason}` : group.reason
}

function resultSentence(service: DlqService, action: Action, done: number, matched: number): string {
  const where = service === 'admin' ? "the admin service's queue" : "the main service's queue"
  const { past } = verbOf(action)
  if (action === 'retry' && done < matched) {
    return `Retried ${done} of ${messages(matched)} from ${where}; ${matched - done} could not be republished and stay dead-lettered. Try again.`
  }
  return `${past} ${messages(done)} from ${where}.`
}

/** The messages of one group, a page at a time, each with its detail on demand. */
function GroupMessages({ service, fingerprint, onAsk }: { service: DlqService; fingerprint: string; onAsk: Ask }) {
  const [offset, setOffset] = useState(0)
  const [open, setOpen] = useState<string | null>(null)
  const query = useOverview(service, fingerprint, offset)
  if (query.isPending) return <Loading label="Loading messages…" />
  if (query.isError) {
    return (
      <Problem title="Couldn't load the messages." onRetry={() => void query.refetch()}>
        {dlqErrorMessage(query.error, service)}
      </Problem>
    )
  }
  const { results, count } = query.data
  const last = Math.min(offset + results.length, count)
  return (
    <div className="vstack gap-2 mt-2">
      <ul className="list-unstyled vstack gap-2 mb-0">
        {results.map((m, index) => {
          const id = m.message_id
          const key = id ?? `no-id-${offset + index}`
          return (
            <li key={key} className="border rounded p-2">
              <div className="d-flex flex-wrap align-items-center justify-content-between gap-2">
                <div className="small text-break">
                  <div>
                    <strong>{m.type ?? 'unknown type'}</strong> · <span className="font-monospace">{id ?? 'no message ID'}</span>
                  </div>
                  <div>
                    {m.attempts === null ? 'unknown attempts' : `${m.attempts} attempt${m.attempts === 1 ? '' : 's'}`} · last
                    failed <time dateTime={m.last_failed_at ?? undefined}>{timeAgo(m.last_failed_at)}</time>
                  </div>
                </div>
                {id ? (
                  <button
                    type="button"
                    className="btn btn-sm btn-outline-primary"
                    aria-expanded={open === id}
                    aria-label={`${open === id ? 'Hide' : 'Show'} details of message ${id}`}
                    onClick={() => setOpen(open === id ? null : id)}
                  >
                    {open === id ? 'Hide details' : 'Details'}
                  </button>
                ) : (
                  <span className="small text-body-secondary">Without an ID it can only be handled with its group.</span>
                )}
              </div>
              {id && open === id && <MessageDetail service={service} messageId={id} onAsk={onAsk} />}
            </li>
          )
        })}
      </ul>
      {count > PAGE_SIZE && (
        <nav aria-label="Message pages" className="d-flex flex-wrap align-items-center gap-2">
          <button type="button" className="btn btn-sm btn-outline-secondary" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE_SIZE))}>
            Previous
          </button>
          <span className="small" aria-live="polite">
            {offset + 1}–{last} of {count}
          </span>
          <button
            type="button"
            className="btn btn-sm btn-outline-secondary"
            disabled={offset + PAGE_SIZE >= count}
            onClick={() => setOffset(offset + PAGE_SIZE)}
          >
            Next
          </button>
        </nav>
      )}
    </div>
  )
}

function GroupItem({
  group,
  expanded,
  onToggle,
  onAsk,
  service,
}: {
  group: DeadLetterGroup
  expanded: boolean
  onToggle: () => void
  onAsk: Ask
  service: DlqService
}) {
  const titleId = useId()
  const listId = useId()
  const title = groupTitle(group)
  const selector = { fingerprint: group.fingerprint }
  const what = `every message of the group “${title}”`
  return (
    <li>
      <article className="border rounded p-2" aria-labelledby={titleId}>
        <div className="d-flex align-items-start justify-content-between gap-2">
          <h3 className="h6 mb-1 text-break" id={titleId}>
            {title}
          </h3>
          <span className="badge text-bg-danger rounded-pill" title="Messages in this group">
            {messages(group.count)}
          </span>
        </div>
        {group.exception_message && <p className="small text-break mb-1">{group.exception_message}</p>}
        <dl className="dlq-facts small mb-2">
          <dt>Reason</dt>
          <dd>{group.reason}</dd>
          <dt>Events</dt>
          <dd className="text-break">{group.event_types.length ? group.event_types.join(', ') : 'unknown'}</dd>
          {group.where && (
            <>
              <dt>Where</dt>
              <dd className="text-break">
                <code>{group.where}</code>
              </dd>
            </>
          )}
          <dt>First seen</dt>
          <dd>
            <time dateTime={group.first_seen ?? undefined} title={group.first_seen ?? undefined}>
              {timeAgo(group.first_seen)}
            </time>
          </dd>
          <dt>Last seen</dt>
          <dd>
            <time dateTime={group.last_seen ?? undefined} title={group.last_seen ?? undefined}>
              {timeAgo(group.last_seen)}
            </time>
          </dd>
        </dl>
        <div className="d-flex flex-wrap gap-2">
          <button type="button" className="btn btn-sm btn-outline-primary" aria-expanded={expanded} aria-controls={listId} onClick={onToggle}>
            {expanded ? 'Hide messages' : 'Show messages'}
          </button>
          <button type="button" className="btn btn-sm btn-primary" onClick={() => onAsk({ action: 'retry', selector, count: group.count, what })}>
            Retry all
          </button>
          <button type="button" className="btn btn-sm btn-outline-secondary" onClick={() => onAsk({ action: 'archive', selector, count: group.count, what })}>
            Archive all…
          </button>
          <button type="button" className="btn btn-sm btn-outline-danger" onClick={() => onAsk({ action: 'discard', selector, count: group.count, what })}>
            Discard all…
          </button>
        </div>
        <div id={listId}>{expanded && <GroupMessages service={service} fingerprint={group.fingerprint} onAsk={onAsk} />}</div>
      </article>
    </li>
  )
}

/** One service's dead-letter queue: its groups, their messages, and the actions on them. */
export function ServicePanel({ service, onAnnounce }: { service: DlqService; onAnnounce: (message: string) => void }) {
  const headingId = useId()
  const headingRef = useRef<HTMLHeadingElement>(null)
  const [expanded, setExpanded] = useState<string | null>(null)
  const [pending, setPending] = useState<Pending | null>(null)
  const query = useOverview(service, null)
  const mutation = useDeadLetterAction(service)
  const label = SERVICE_LABEL[service]

  function confirm(reason: string) {
    if (!pending) return
    const { action, selector } = pending
    mutation.mutate(
      { action, selector, reason },
      {
        onSuccess: ({ done, matched }) => {
          onAnnounce(resultSentence(service, action, done, matched))
          setPending(null)
          mutation.reset()
        },
        onError: (err) => {
          // Nothing left to act on: say so, close, and show the refreshed list.
          if (err instanceof ApiError && err.status === 404) {
            onAnnounce(`${label}: ${dlqErrorMessage(err, service)}`)
            setPending(null)
            mutation.reset()
          }
        },
      },
    )
  }

  let body
  if (query.isPending) body = <Loading label={`Loading the ${label.toLowerCase()}'s dead letters…`} />
  else if (query.isError)
    body = (
      <Problem title={`Couldn't load the ${label.toLowerCase()}'s dead letters.`} onRetry={() => void query.refetch()}>
        {dlqErrorMessage(query.error, service)}
      </Problem>
    )
  else if (query.data.depth === 0 && query.data.groups.length === 0)
    body = <p className="text-success mb-0">No dead letters here: every event was applied.</p>
  else {
    const { groups, capped, scanned, depth } = query.data
    const open = groups.some((g) => g.fingerprint === expanded) ? expanded : null
    body = (
      <>
        {capped && (
          <p className="small text-body-secondary">
            Groups count the first {scanned.toLocaleString('en')} of {depth.toLocaleString('en')} messages.
          </p>
        )}
        <ul className="list-unstyled vstack gap-2 mb-0">
          {groups.map((group) => (
            <GroupItem
              key={group.fingerprint}
              group={group}
              service={service}
              expanded={open === group.fingerprint}
              onToggle={() => setExpanded(open === group.fingerprint ? null : group.fingerprint)}
              onAsk={setPending}
            />
          ))}
        </ul>
      </>
    )
  }

  const data = query.data
  return (
    <section className="card h-100" aria-labelledby={headingId} aria-busy={query.isFetching}>
      <div className="card-header">
        <h2 className="h5 mb-0" id={headingId} ref={headingRef} tabIndex={-1}>
          {label}
        </h2>
        {data && (
          <p className="small text-body-secondary mb-0">
            <span className="font-monospace">{data.queue}</span> · {messages(data.depth)}
            {data.oldest_at && <> · oldest failed {timeAgo(data.oldest_at)}</>}
          </p>
        )}
      </div>
      <div className="card-body">{body}</div>
      {pending && (
        <ActionDialog
          action={pending.action}
          count={pending.count}
          busy={mutation.isPending}
          error={mutation.isError ? dlqErrorMessage(mutation.error, service) : null}
          onConfirm={confirm}
          onCancel={() => {
            setPending(null)
            mutation.reset()
          }}
          fallbackFocus={() => headingRef.current?.focus()}
        >
          {verbOf(pending.action).verb} {pending.what} in the {label.toLowerCase()}'s queue
          {data ? <> (<span className="font-monospace">{data.queue}</span>)</> : null}?{' '}
          {pending.action === 'retry' && 'They go back to the service to be applied again; any that fail again come back here.'}
          {pending.action === 'discard' && 'They are dropped for good; the audit log keeps who, when and why.'}
          {pending.action === 'archive' && 'They leave the queue; the audit log keeps their body and headers.'}
        </ActionDialog>
      )}
    </section>
  )
}
