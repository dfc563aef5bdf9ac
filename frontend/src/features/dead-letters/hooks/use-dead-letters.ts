import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { getDeadLetter } from '../api/get-dead-letter'
import { getDeadLetters } from '../api/get-dead-letters'
import { getDepth } from '../api/get-depth'
import { removeDeadLetters } from '../api/remove-dead-letters'
import { retryDeadLetters } from '../api/retry-dead-letters'
import type { Action, DlqService, Selector } from '../api/types'

/** The navigation asks how deep the queues are this often. */
export const DEPTH_POLL_MS = 30_000
/**
 * An open workbench asks for the depth this often, and reads the lists again when it changed (and
 * when the window regains focus, or on Refresh). A list is a scan that holds every dead letter for
 * a moment: polling it would hide messages from an action clicked meanwhile.
 */
export const OVERVIEW_POLL_MS = 15_000
export const PAGE_SIZE = 20

export const deadLettersKey = ['dead-letters'] as const
const serviceKey = (service: DlqService) => [...deadLettersKey, service] as const

/** Poll a service's dead-letter depth (the navigation link; the open workbench, more often). */
export function useDepth(service: DlqService, every: number = DEPTH_POLL_MS) {
  return useQuery({
    queryKey: [...serviceKey(service), 'depth'],
    queryFn: ({ signal }) => getDepth(service, signal),
    refetchInterval: every,
    // Another answer comes in 30 s; a failing service only hides its part of the count.
    retry: false,
  })
}

/** Load a service's groups (the whole queue) and the page of messages of one group, if any. */
export function useOverview(service: DlqService, fingerprint: string | null, offset = 0) {
  const depth = useDepth(service, OVERVIEW_POLL_MS).data?.depth ?? null
  return useQuery({
    // The depth is part of the key: a dead letter coming or going reads the lists again.
    queryKey: [...serviceKey(service), 'overview', fingerprint, offset, depth],
    queryFn: ({ signal }) => getDeadLetters(service, { fingerprint, limit: PAGE_SIZE, offset }, signal),
    placeholderData: keepPreviousData,
  })
}

/** Load one dead letter's detail. */
export function useDeadLetter(service: DlqService, messageId: string | null) {
  return useQuery({
    queryKey: [...serviceKey(service), 'message', messageId],
    queryFn: ({ signal }) => getDeadLetter(service, messageId as string, signal),
    enabled: messageId !== null,
  })
}

export type ActionRequest = { action: Action; selector: Selector; reason?: string }

/** Retry, discard or archive; returns how many messages it applied to. Refreshes the service's lists after. */
export function useDeadLetterAction(service: DlqService) {
  const client = useQueryClient()
  return useMutation({
    mutationFn: async ({ action, selector, reason }: ActionRequest) => {
      if (action === 'retry') {
        const result = await retryDeadLetters(service, selector)
        return { done: result.retried, matched: result.matched }
      }
      const done = await removeDeadLetters(service, action, selector, reason ?? '')
      return { done, matched: done }
    },
    onSettled: () => client.invalidateQueries({ queryKey: serviceKey(service) }),
  })
}

/** Refetch everything the workbench shows, for both services. */
export function useRefreshAll() {
  const client = useQueryClient()
  return () => client.invalidateQueries({ queryKey: deadLettersKey })
}
