import { dlqRequest } from './request'
import type { DeadLetterOverview, DlqService } from './types'

export type OverviewQuery = { fingerprint?: string | null; limit: number; offset: number }

/** Return a service's dead letters grouped by fingerprint, with one page of messages. */
export function getDeadLetters(service: DlqService, query: OverviewQuery, signal?: AbortSignal): Promise<DeadLetterOverview> {
  const params = new URLSearchParams({ limit: String(query.limit), offset: String(query.offset) })
  if (query.fingerprint) params.set('fingerprint', query.fingerprint)
  return dlqRequest<DeadLetterOverview>(service, `?${params}`, { signal })
}
