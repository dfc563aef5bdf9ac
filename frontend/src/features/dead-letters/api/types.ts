/** The two services that own a dead-letter queue. */
export type DlqService = 'admin' | 'main'

/** GET {base}/depth: how many messages wait in the service's dead-letter queue. */
export type DlqDepth = { queue: string; depth: number }

/** One group of dead letters that failed the same way (same fingerprint). */
export type DeadLetterGroup = {
  fingerprint: string
  reason: string
  exception_type: string | null
  exception_message: string | null
  where: string | null
  event_types: string[]
  count: number
  first_seen: string | null
  last_seen: string | null
}

/** One dead letter as the lists show it. */
export type DeadLetterSummary = {
  message_id: string | null
  type: string | null
  routing_key: string | null
  fingerprint: string
  reason: string
  exception_type: string | null
  exception_message: string | null
  where: string | null
  attempts: number | null
  first_failed_at: string | null
  last_failed_at: string | null
  host: string | null
  source: 'consumer' | 'broker'
  retried: number
}

/** GET {base}?fingerprint=&limit=&offset=: groups of the whole queue and one page of messages. */
export type DeadLetterOverview = {
  queue: string
  depth: number
  scanned: number
  capped: boolean
  oldest_at: string | null
  groups: DeadLetterGroup[]
  count: number
  results: DeadLetterSummary[]
}

/** GET {base}/<message_id>: one dead letter with its body, headers and x-death. */
export type DeadLetterDetail = DeadLetterSummary & {
  payload: unknown
  body: string
  headers: Record<string, unknown>
  x_death: unknown[]
}

/** Exactly one of them picks what an action applies to. */
export type Selector = { message_id: string } | { fingerprint: string }

export type RetryResult = { matched: number; retried: number; depth: number; message_ids: string[] }
export type DiscardResult = { discarded: number; message_ids: string[] }
export type ArchiveResult = { archived: number; message_ids: string[] }

export type RemoveAction = 'discard' | 'archive'
export type Action = 'retry' | RemoveAction
