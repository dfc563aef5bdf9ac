import { dlqRequest } from './request'
import type { ArchiveResult, DiscardResult, DlqService, RemoveAction, Selector } from './types'

/** Drop (discard) or keep in the audit log (archive) one dead letter or a group, saying why. */
export async function removeDeadLetters(
  service: DlqService,
  action: RemoveAction,
  selector: Selector,
  reason: string,
): Promise<number> {
  const body = { ...selector, reason }
  if (action === 'discard') return (await dlqRequest<DiscardResult>(service, '/discard', { method: 'POST', body })).discarded
  return (await dlqRequest<ArchiveResult>(service, '/archive', { method: 'POST', body })).archived
}
