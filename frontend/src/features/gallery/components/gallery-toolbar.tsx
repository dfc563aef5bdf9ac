import { useEffect, useId, useState } from 'react'
import type { GalleryFilter, GallerySort } from '../api/types'
import { MAX_SEARCH_LENGTH, SORT_LABELS, normalizeSearch } from '../hooks/use-gallery-params'

/** Wait this long after the last keystroke before searching. */
export const SEARCH_DEBOUNCE_MS = 300

type Props = {
  filter: GalleryFilter
  onChange: (next: Partial<GalleryFilter>, options?: { replace?: boolean }) => void
}

/** The search box and the order select above the gallery. */
export function GalleryToolbar({ filter, onChange }: Props) {
  const searchId = useId()
  const sortId = useId()
  const [draft, setDraft] = useState(filter.q)
  const [shownQ, setShownQ] = useState(filter.q)
  // The URL's search changed without typing (Back, a shared link, Clear search): show it in the box.
  if (filter.q !== shownQ) {
    setShownQ(filter.q)
    if (normalizeSearch(draft) !== filter.q) setDraft(filter.q)
  }

  // Typing replaces the history entry once the typing pauses: Back leaves the search, not a letter.
  useEffect(() => {
    const value = normalizeSearch(draft)
    if (value === filter.q) return
    const timer = setTimeout(() => onChange({ q: value }, { replace: true }), SEARCH_DEBOUNCE_MS)
    return () => clearTimeout(timer)
  }, [draft, filter.q, onChange])

  return (
    <form
      role="search"
      aria-label="Products"
      className="row g-2 align-items-end mb-3"
      onSubmit={(event) => {
        event.preventDefault()
        onChange({ q: draft }, { replace: true })
      }}
    >
      <div className="col-12 col-sm">
        <label htmlFor={searchId} className="form-label small text-body-secondary mb-1">
          Search products
        </label>
        <input
          id={searchId}
          type="search"
          className="form-control"
          placeholder="Title contains…"
          autoComplete="off"
          maxLength={MAX_SEARCH_LENGTH}
          value={draft}
          onChange={(event) => setDraft(event.target.value)}
        />
      </div>
      <div className="col-12 col-sm-auto">
        <label htmlFor={sortId} className="form-label small text-body-secondary mb-1">
          Sort by
        </label>
        <select
          id={sortId}
          className="form-select"
          value={filter.sort}
          // A new order is a new view: its own history entry, with whatever is typed in the box.
          onChange={(event) => onChange({ sort: event.target.value as GallerySort, q: draft })}
        >
          {Object.entries(SORT_LABELS).map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
      </div>
    </form>
  )
}
