import { useCallback, type KeyboardEvent, type RefObject } from 'react'

/** What Tab cycles through inside a modal. */
export const FOCUSABLE =
  'button:not([disabled]), textarea:not([disabled]), input:not([disabled]), select:not([disabled]), [href], [tabindex]:not([tabindex="-1"])'

/**
 * Return the onKeyDown of a modal: Escape cancels (unless busy), Tab and Shift+Tab stay inside it.
 * https://www.w3.org/WAI/ARIA/apg/patterns/dialog-modal/
 */
export function useModalKeys(dialogRef: RefObject<HTMLElement | null>, onCancel: () => void, busy: boolean) {
  return useCallback(
    (event: KeyboardEvent<HTMLElement>) => {
      if (event.key === 'Escape' && !busy) {
        event.stopPropagation()
        onCancel()
        return
      }
      if (event.key !== 'Tab' || !dialogRef.current) return
      const focusable = Array.from(dialogRef.current.querySelectorAll<HTMLElement>(FOCUSABLE))
      if (focusable.length === 0) return
      const first = focusable[0]
      const last = focusable[focusable.length - 1]
      if (event.shiftKey && document.activeElement === first) {
        event.preventDefault()
        last.focus()
      } else if (!event.shiftKey && document.activeElement === last) {
        event.preventDefault()
        first.focus()
      }
    },
    [dialogRef, onCancel, busy],
  )
}
