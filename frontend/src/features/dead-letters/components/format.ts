import { ApiError, NetworkError, errorMessage } from '@/lib/api-client'
import type { Action, DlqService } from '../api/types'

/** How a person names each service's queue on this page. */
export const SERVICE_LABEL: Record<DlqService, string> = { admin: 'Admin service', main: 'Main service' }

/** Say how long ago an ISO time was, the way people say it: "3 min ago". */
export function timeAgo(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return 'unknown'
  const then = Date.parse(iso)
  if (Number.isNaN(then)) return 'unknown'
  const seconds = Math.max(0, Math.round((now - then) / 1000))
  if (seconds < 60) return 'just now'
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes} min ago`
  const hours = Math.floor(minutes / 60)
  if (hours < 48) return `${hours} h ago`
  const days = Math.floor(hours / 24)
  return `${days} days ago`
}

/** "1 message", "12 messages". */
export function messages(n: number): string {
  return `${n} message${n === 1 ? '' : 's'}`
}

const VERB: Record<Action, { verb: string; past: string }> = {
  retry: { verb: 'Retry', past: 'Retried' },
  discard: { verb: 'Discard', past: 'Discarded' },
  archive: { verb: 'Archive', past: 'Archived' },
}

/** The imperative and past tense of an action ("Retry", "Retried"). */
export function verbOf(action: Action): { verb: string; past: string } {
  return VERB[action]
}

/** Turn an error from a dead-letter call into what happened and what to do next. */
export function dlqErrorMessage(err: unknown, service: DlqService): string {
  const name = service === 'admin' ? 'The admin service' : 'The main service'
  if (err instanceof NetworkError) return `${name} could not be reached. Check your connection, then press Refresh.`
  if (!(err instanceof ApiError)) return errorMessage(err)
  if (err.code === 'broker_unavailable' || (err.status === 503 && err.code !== 'operations_disabled')) {
    return `${name} cannot reach the message broker (RabbitMQ), so its dead letters cannot be read or changed right now. Check that RabbitMQ is running, then press Refresh. Nothing was changed.`
  }
  if (err.code === 'operations_disabled') {
    return `${name} has no operator keys configured (OPERATOR_JWKS or OPERATOR_JWKS_FILE), so its dead letters cannot be opened from here.`
  }
  if (err.status === 401) {
    return service === 'admin'
      ? 'Your session has ended. Sign in again to work with dead letters.'
      : `${name} did not accept your operator token. Reload the page; if it keeps happening, check that it trusts the admin service's signing key (OPERATOR_JWKS).`
  }
  if (err.status === 403) return 'Only staff users can work with dead letters. Sign in with a staff account.'
  if (err.status === 404) return 'Those dead letters are no longer in the queue: someone may have retried or removed them. The list has been refreshed.'
  if (err.status === 400) return `The request was refused: ${err.detail ?? err.message}`
  return errorMessage(err)
}
