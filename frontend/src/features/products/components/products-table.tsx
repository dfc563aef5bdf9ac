import { useEffect, useId, useRef, useState } from 'react'
import { Link, useLocation } from 'react-router'
import { ConfirmDialog } from '@/components/ui/confirm-dialog'
import { ProductImage } from '@/components/ui/product-image'
import { Loading, Problem } from '@/components/ui/status'
import { useToast } from '@/components/ui/toast-context'
import { env } from '@/config/env'
import { ApiError, errorMessage } from '@/lib/api-client'
import { deleteProduct } from '../api/delete-product'
import type { Ordering, SortField } from '../api/get-products'
import type { Product } from '../api/types'
import { PAGE_SIZES, listSearch, useListState, useProductsPage, useRemoveLocally, type ListState } from '../hooks/use-products'

const SEARCH_DEBOUNCE_MS = 300
const number = new Intl.NumberFormat('en')
const day = new Intl.DateTimeFormat('en', { dateStyle: 'medium' })

/** What a page that sends people back to the table passes in the location state. */
export type ListReturn = { highlight?: number; list?: string }

const SORT_LABELS: Record<Ordering, string> = {
  '-created': 'Newest first',
  created: 'Oldest first',
  title: 'Title A–Z',
  '-title': 'Title Z–A',
  '-likes': 'Most liked',
  likes: 'Least liked',
  id: 'ID ascending',
  '-id': 'ID descending',
}

/** The text-like fields sort A→Z first; numbers and dates biggest/newest first. */
function nextOrdering(current: Ordering, field: SortField): Ordering {
  if (current === field) return `-${field}` as Ordering
  if (current === `-${field}`) return field
  return field === 'title' ? 'title' : (`-${field}` as Ordering)
}

function SortHeader({
  field,
  label,
  state,
  onSort,
  className = '',
}: {
  field: SortField
  label: string
  state: ListState
  onSort: (ordering: Ordering) => void
  className?: string
}) {
  const direction = state.ordering === field ? 'ascending' : state.ordering === `-${field}` ? 'descending' : 'none'
  const arrow = direction === 'ascending' ? '▲' : direction === 'descending' ? '▼' : '↕'
  return (
    <th scope="col" aria-sort={direction} className={className}>
      <button
        type="button"
        className="btn btn-link sort-button p-0 text-reset text-decoration-none fw-semibold"
        onClick={() => onSort(nextOrdering(state.ordering, field))}
      >
        {label}
        <span aria-hidden="true" className={`ms-1 small ${direction === 'none' ? 'text-body-tertiary' : ''}`}>
          {arrow}
        </span>
        <span className="visually-hidden">, sort</span>
      </button>
    </th>
  )
}

/** A debounced search box that follows the URL when it changes from outside (back, a link). */
function SearchBox({ value, onSearch }: { value: string; onSearch: (q: string) => void }) {
  const id = useId()
  const [text, setText] = useState(value)
  const committed = useRef(value)

  useEffect(() => {
    if (value !== committed.current) {
      committed.current = value
      setText(value)
    }
  }, [value])

  useEffect(() => {
    if (text === committed.current) return
    const timer = setTimeout(() => {
      committed.current = text
      onSearch(text)
    }, SEARCH_DEBOUNCE_MS)
    return () => clearTimeout(timer)
  }, [text, onSearch])

  return (
    <div role="search" className="flex-grow-1" style={{ minWidth: 200, maxWidth: 420 }}>
      <label htmlFor={id} className="visually-hidden">
        Search products
      </label>
      <input
        id={id}
        type="search"
        className="form-control"
        placeholder="Search by title or ID"
        autoComplete="off"
        maxLength={200}
        value={text}
        onChange={(e) => setText(e.target.value)}
      />
    </div>
  )
}

/** Page links: first, last, and the pages around the current one. */
function Pagination({ state, pages }: { state: ListState; pages: number }) {
  if (pages <= 1) return null
  const around = [state.page - 1, state.page, state.page + 1].filter((p) => p > 1 && p < pages)
  const shown = [1, ...around, pages]
  const href = (page: number) => {
    const search = listSearch({ ...state, page }).toString()
    return search ? `?${search}` : '?'
  }
  const item = (page: number, label: string, aria: string, disabled = false) => (
    <li className={`page-item ${disabled ? 'disabled' : ''}`} key={`${label}-${page}`}>
      {disabled ? (
        <span className="page-link" aria-disabled="true">
          {label}
        </span>
      ) : (
        <Link className="page-link" to={href(page)} aria-label={aria}>
          {label}
        </Link>
      )}
    </li>
  )
  return (
    <nav aria-label="Pages">
      <ul className="pagination flex-wrap mb-0">
        {item(state.page - 1, 'Previous', 'Previous page', state.page <= 1)}
        {shown.map((page, index) => (
          <li key={page} className={`page-item ${page === state.page ? 'active' : ''}`}>
            {index > 0 && page - shown[index - 1] > 1 && (
              <span className="page-link border-0 bg-transparent" aria-hidden="true">
                …
              </span>
            )}
            {page === state.page ? (
              <span className="page-link" aria-current="page">
                {page}
                <span className="visually-hidden"> (current page)</span>
              </span>
            ) : (
              <Link className="page-link" to={href(page)} aria-label={`Page ${page}`}>
                {page}
              </Link>
            )}
          </li>
        ))}
        {item(state.page + 1, 'Next', 'Next page', state.page >= pages)}
      </ul>
    </nav>
  )
}

/** Search, sort and page the catalogue; edit and delete products; highlight the one just saved. */
export function ProductsTable({ pollMs = env.GALLERY_POLL_MS }: { pollMs?: number }) {
  const [state, update] = useListState()
  const { data, status, error, isFetching, isPlaceholderData, refetch } = useProductsPage(state, pollMs)
  const removeLocally = useRemoveLocally()
  const toast = useToast()
  const location = useLocation()
  const sizeId = useId()
  const sortId = useId()
  const [toDelete, setToDelete] = useState<Product | null>(null)
  const [deleting, setDeleting] = useState(false)
  const highlight = (location.state as ListReturn | null)?.highlight
  const highlightRef = useRef<HTMLTableRowElement>(null)

  const total = data?.total ?? 0
  const pages = Math.max(1, Math.ceil(total / state.size))

  // After deletes (here or elsewhere) the page asked for may no longer exist: show the last one.
  useEffect(() => {
    if (data && !isPlaceholderData && state.page > pages) update({ page: pages })
  }, [data, isPlaceholderData, state.page, pages, update])

  useEffect(() => {
    highlightRef.current?.scrollIntoView?.({ block: 'nearest' })
  }, [highlight, data])

  async function confirmDelete() {
    if (!toDelete) return
    setDeleting(true)
    try {
      await deleteProduct(toDelete.id)
      removeLocally(toDelete.id)
      toast.show('success', `Deleted “${toDelete.title}”.`)
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        removeLocally(toDelete.id)
        toast.show('info', `“${toDelete.title}” was already deleted.`)
      } else {
        toast.show('danger', `Couldn't delete “${toDelete.title}”: ${errorMessage(err)}`)
      }
    } finally {
      setDeleting(false)
      setToDelete(null)
    }
  }

  const list = `${location.search}`
  const products = data?.products ?? []
  // From the page on screen, which is the previous one while the next loads.
  const first = (data?.offset ?? 0) + 1
  let summary = ''
  if (data) {
    const match = state.q ? ` ${total === 1 ? 'matches' : 'match'} “${state.q}”` : ''
    // An empty list says so in its own box below.
    if (total === 0) summary = ''
    else if (total <= products.length && first === 1) summary = `${number.format(total)} ${total === 1 ? 'product' : 'products'}${match}.`
    else
      summary = `${number.format(first)}–${number.format(first + products.length - 1)} of ${number.format(total)} products${match}.`
  }

  return (
    <div className="vstack gap-3">
      <div className="d-flex flex-wrap align-items-center gap-2">
        <SearchBox value={state.q} onSearch={(q) => update({ q })} />
        <div className="d-flex align-items-center gap-2 d-md-none">
          <label htmlFor={sortId} className="form-label mb-0 text-nowrap">
            Sort
          </label>
          <select
            id={sortId}
            className="form-select"
            value={state.ordering}
            onChange={(e) => update({ ordering: e.target.value as Ordering })}
          >
            {Object.entries(SORT_LABELS).map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </div>
        <div className="d-flex align-items-center gap-2 ms-md-auto">
          <label htmlFor={sizeId} className="form-label mb-0 text-nowrap">
            Rows per page
          </label>
          <select id={sizeId} className="form-select w-auto" value={state.size} onChange={(e) => update({ size: Number(e.target.value) })}>
            {PAGE_SIZES.map((size) => (
              <option key={size} value={size}>
                {size}
              </option>
            ))}
          </select>
        </div>
      </div>

      <p className="mb-0 text-body-secondary" role="status" aria-live="polite" data-testid="list-summary">
        {summary}
        {isFetching && isPlaceholderData && <span className="ms-2 spinner-border spinner-border-sm" aria-label="Loading" />}
      </p>

      {status === 'pending' ? (
        <Loading label="Loading products…" />
      ) : status === 'error' && !data ? (
        <Problem title="We couldn't load the products." onRetry={() => void refetch()}>
          {errorMessage(error)}
        </Problem>
      ) : total === 0 ? (
        state.q ? (
          <Problem variant="light" title={`No products match “${state.q}”.`} onRetry={() => update({ q: '' })} retryLabel="Clear the search">
            Try another word, or part of a title.
          </Problem>
        ) : (
          <Problem variant="light" title="No products yet.">
            <Link to="/admin/products/create">Create the first one</Link>.
          </Problem>
        )
      ) : (
        <div className="table-responsive">
          <table className="table table-hover align-middle products-table" aria-busy={isFetching && isPlaceholderData}>
            <caption className="visually-hidden">Products</caption>
            <thead>
              <tr>
                <th scope="col" style={{ width: 80 }} className="d-none d-sm-table-cell">
                  Image
                </th>
                <SortHeader field="id" label="ID" state={state} onSort={(ordering) => update({ ordering })} className="d-none d-md-table-cell" />
                <SortHeader field="title" label="Title" state={state} onSort={(ordering) => update({ ordering })} />
                <SortHeader field="likes" label="Likes" state={state} onSort={(ordering) => update({ ordering })} className="text-end" />
                <SortHeader field="created" label="Created" state={state} onSort={(ordering) => update({ ordering })} className="d-none d-md-table-cell" />
                <th scope="col" className="text-end">
                  Actions
                </th>
              </tr>
            </thead>
            <tbody>
              {products.map((p) => (
                <tr
                  key={p.id}
                  ref={p.id === highlight ? highlightRef : undefined}
                  className={p.id === highlight ? 'table-success row-highlight' : undefined}
                  data-highlighted={p.id === highlight ? 'true' : undefined}
                >
                  <td className="d-none d-sm-table-cell">
                    <div style={{ width: 56 }}>
                      <ProductImage src={p.image} alt={`Preview of ${p.title}`} ratio="1x1" className="rounded" compact />
                    </div>
                  </td>
                  <td className="d-none d-md-table-cell text-body-secondary">{p.id}</td>
                  <td className="title-cell">
                    <span className="text-truncate-2" title={p.title}>
                      {p.title}
                    </span>
                  </td>
                  <td className="text-end" data-testid="likes">
                    {p.likes}
                  </td>
                  <td className="d-none d-md-table-cell text-nowrap">
                    <time dateTime={p.created_at}>{day.format(new Date(p.created_at))}</time>
                  </td>
                  <td className="text-end">
                    <div className="d-inline-flex flex-nowrap justify-content-end gap-2">
                      <Link
                        to={`/admin/products/${p.id}/edit`}
                        state={{ list } satisfies ListReturn}
                        className="btn btn-sm btn-outline-primary"
                        aria-label={`Edit ${p.title}`}
                      >
                        Edit
                      </Link>
                      <button
                        type="button"
                        className="btn btn-sm btn-outline-danger"
                        aria-label={`Delete ${p.title}`}
                        onClick={() => setToDelete(p)}
                      >
                        Delete
                      </button>
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <Pagination state={state} pages={pages} />

      {error && data && (
        <p className="text-warning-emphasis small mb-0" role="status">
          Couldn't refresh: {errorMessage(error)}
        </p>
      )}
      <ConfirmDialog
        open={toDelete !== null}
        title="Delete product?"
        confirmLabel="Delete"
        busy={deleting}
        onConfirm={() => void confirmDelete()}
        onCancel={() => setToDelete(null)}
      >
        “{toDelete?.title}” will be removed from the catalogue and the shop. This cannot be undone.
      </ConfirmDialog>
    </div>
  )
}
