import { dlqRequest } from './request'
import type { DeadLetterDetail, DlqService } from './types'

/** Return one dead letter with its payload, headers and x-death (404 once it left the queue). */
export function getDeadLetter(service: DlqService, messageId: string, signal?: AbortSignal): Promise<DeadLetterDetail> {
  return dlqRequest<DeadLetterDetail>(service, `/${encodeURIComponent(messageId)}`, { signal })
}
