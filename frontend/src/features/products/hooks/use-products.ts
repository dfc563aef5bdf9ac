import { keepPreviousData, useQuery, useQueryClient } from '@tanstack/react-query'
import { useCallback, useMemo } from 'react'
import { useSearchParams } from 'react-router'
import { ORDERINGS, getProductsPage, type Ordering, type ProductPage, type ProductQuery } from '../api/get-products'

export const PAGE_SIZES = [10, 25, 50, 100] as const
export const DEFAULT_ORDERING: Ordering = '-created'
export const DEFAULT_PAGE_SIZE = 25
const MAX_SEARCH = 200

/** What the admin table shows, as the URL says it: ?q=&ordering=&page=&size= (defaults left out). */
export type ListState = { q: string; ordering: Ordering; page: number; size: number }

function parsePositive(raw: string | null, fallback: number): number {
  const value = raw !== null && /^\d{1,6}$/.test(raw) ? Number(raw) : NaN
  return value >= 1 ? value : fallback
}

/** Read the table's state from the URL; anything unknown falls back to the default. */
export function parseListState(params: URLSearchParams): ListState {
  const ordering = params.get('ordering')
  const size = parsePositive(params.get('size'), DEFAULT_PAGE_SIZE)
  return {
    q: (params.get('q') ?? '').slice(0, MAX_SEARCH),
    ordering: ORDERINGS.includes(ordering as Ordering) ? (ordering as Ordering) : DEFAULT_ORDERING,
    page: parsePositive(params.get('page'), 1),
    size: (PAGE_SIZES as readonly number[]).includes(size) ? size : DEFAULT_PAGE_SIZE,
  }
}

/** Write the table's state as URL parameters, leaving defaults out so plain links stay plain. */
export function listSearch(state: ListState): URLSearchParams {
  const params = new URLSearchParams()
  if (state.q) params.set('q', state.q)
  if (state.ordering !== DEFAULT_ORDERING) params.set('ordering', state.ordering)
  if (state.page !== 1) params.set('page', String(state.page))
  if (state.size !== DEFAULT_PAGE_SIZE) params.set('size', String(state.size))
  return params
}

/** The table's state in the URL, and a setter: a new search replaces the history entry, the rest push one. */
export function useListState(): [ListState, (change: Partial<ListState>) => void] {
  const [params, setParams] = useSearchParams()
  const state = useMemo(() => parseListState(params), [params])
  const update = useCallback(
    (change: Partial<ListState>) => {
      // A new search, sort or page size starts again on page 1.
      const resetsPage = 'q' in change || 'ordering' in change || 'size' in change
      const next = { ...state, ...(resetsPage ? { page: 1 } : {}), ...change }
      const typing = 'q' in change && Object.keys(change).length === 1
      setParams(listSearch(next), { replace: typing, preventScrollReset: true })
    },
    [state, setParams],
  )
  return [state, update]
}

export const productsKey = ['products'] as const

/** Load one page of the admin table and refresh it every pollMs (0 = no polling). */
export function useProductsPage(state: ListState, pollMs: number) {
  const query: ProductQuery = {
    search: state.q.trim(),
    ordering: state.ordering,
    limit: state.size,
    offset: (state.page - 1) * state.size,
  }
  return useQuery<ProductPage>({
    queryKey: [...productsKey, query],
    queryFn: ({ signal }) => getProductsPage(query, signal),
    // The old page stays on screen while the next one loads: the table does not blink.
    placeholderData: keepPreviousData,
    refetchInterval: pollMs > 0 ? pollMs : false,
  })
}

/** Drop a product from every cached page at once (after a delete), and refetch in the background. */
export function useRemoveLocally() {
  const client = useQueryClient()
  return useCallback(
    (id: number) => {
      client.setQueriesData<ProductPage>({ queryKey: productsKey }, (page) =>
        page && page.products.some((p) => p.id === id)
          ? { ...page, products: page.products.filter((p) => p.id !== id), total: Math.max(0, page.total - 1) }
          : page,
      )
      void client.invalidateQueries({ queryKey: productsKey })
    },
    [client],
  )
}
