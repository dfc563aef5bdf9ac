import { dlqRequest } from './request'
import type { DlqService, RetryResult, Selector } from './types'

/** Republish one dead letter or a whole group to the service's queue. */
export function retryDeadLetters(service: DlqService, selector: Selector): Promise<RetryResult> {
  return dlqRequest<RetryResult>(service, '/retry', { method: 'POST', body: selector })
}
