import type { ProductInput } from '../api/types'

/**
 * Unsaved product forms, kept in this tab's sessionStorage under the page's path. A form whose
 * session expires is sent to /login and loses its state; the draft brings it back after sign-in
 * (and after a reload). Saving or leaving on purpose drops it. Nothing here leaves the browser.
 */
const PREFIX = 'product-draft:'

function storage(): Storage | null {
  try {
    return window.sessionStorage
  } catch {
    return null // storage disabled (privacy settings): forms still work, without drafts
  }
}

/** Return the draft saved for a page, or null. */
export function loadDraft(path: string): ProductInput | null {
  const raw = storage()?.getItem(PREFIX + path)
  if (!raw) return null
  try {
    const value = JSON.parse(raw) as Partial<ProductInput>
    return typeof value.title === 'string' && typeof value.image === 'string' ? { title: value.title, image: value.image } : null
  } catch {
    return null
  }
}

/** Keep a page's unsaved values. */
export function saveDraft(path: string, values: ProductInput): void {
  try {
    storage()?.setItem(PREFIX + path, JSON.stringify(values))
  } catch {
    // Quota exceeded: the draft is a convenience, the form goes on without it.
  }
}

/** Forget a page's draft (saved, or left on purpose). */
export function clearDraft(path: string): void {
  storage()?.removeItem(PREFIX + path)
}

/** Return true when a page (a path, possibly with ?query) has unsaved values waiting. */
export function hasDraft(pathWithQuery: string): boolean {
  return loadDraft(pathWithQuery.split(/[?#]/)[0]) !== null
}
