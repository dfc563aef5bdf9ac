import { dlqRequest } from './request'
import type { DlqDepth, DlqService } from './types'

/**
 * Return how many dead letters wait in a service's queue (cheap: no scan). The navigation polls it in
 * the background: a 401 there is not reported as a lost session (the page the admin is on decides).
 */
export function getDepth(service: DlqService, signal?: AbortSignal): Promise<DlqDepth> {
  return dlqRequest<DlqDepth>(service, '/depth', { signal, skipAuthEvents: true })
}
