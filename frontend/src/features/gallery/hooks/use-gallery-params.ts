import { useCallback, useMemo } from 'react'
import { useSearchParams } from 'react-router'
import type { GalleryFilter, GallerySort } from '../api/types'

/** The server refuses longer searches. */
export const MAX_SEARCH_LENGTH = 200
export const DEFAULT_SORT: GallerySort = 'newest'

export const SORT_LABELS: Record<GallerySort, string> = { newest: 'Newest', liked: 'Most liked' }

function parseSort(value: string | null): GallerySort {
  return value === 'liked' ? 'liked' : DEFAULT_SORT
}

/** Clean a search as the server would (trimmed, at most 200 characters). */
export function normalizeSearch(value: string): string {
  return value.slice(0, MAX_SEARCH_LENGTH).trim()
}

/**
 * Keep the gallery's search and order in the URL (`?q=mug&sort=liked`, defaults left out),
 * so a link shows the same list and Back goes to the list before.
 */
export function useGalleryParams() {
  const [params, setParams] = useSearchParams()
  const q = normalizeSearch(params.get('q') ?? '')
  const sort = parseSort(params.get('sort'))
  const filter = useMemo<GalleryFilter>(() => ({ q, sort }), [q, sort])

  /** Show another search and/or order; replace the history entry instead of adding one. */
  const update = useCallback(
    (next: Partial<GalleryFilter>, { replace = false }: { replace?: boolean } = {}) => {
      setParams(
        (current) => {
          const out = new URLSearchParams(current)
          if (next.q !== undefined) {
            const value = normalizeSearch(next.q)
            if (value) out.set('q', value)
            else out.delete('q')
          }
          if (next.sort !== undefined) {
            if (next.sort === DEFAULT_SORT) out.delete('sort')
            else out.set('sort', next.sort)
          }
          return out
        },
        { replace },
      )
    },
    [setParams],
  )

  return { filter, update }
}
