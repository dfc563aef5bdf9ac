import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from 'react'
import { useModalKeys } from '@/components/ui/use-modal-keys'
import type { Action } from '../api/types'
import { messages, verbOf } from './format'

export const MAX_REASON = 500

type Props = {
  action: Action
  count: number
  /** What the action applies to, in a sentence ("the group InvalidEvent: bad_data in admin.dlq"). */
  children: ReactNode
  busy: boolean
  error: string | null
  onConfirm: (reason: string) => void
  onCancel: () => void
  /** Where focus goes when the dialog closes and the button that opened it is gone. */
  fallbackFocus?: () => void
}

/** Ask to confirm a retry, discard or archive; discard and archive need a reason for the audit log. */
export function ActionDialog({ action, count, children, busy, error, onConfirm, onCancel, fallbackFocus }: Props) {
  const titleId = useId()
  const bodyId = useId()
  const reasonId = useId()
  const reasonHelpId = useId()
  const reasonErrorId = useId()
  const dialogRef = useRef<HTMLDivElement>(null)
  const firstRef = useRef<HTMLTextAreaElement & HTMLButtonElement>(null)
  const fallback = useRef(fallbackFocus)
  const [reason, setReason] = useState('')
  const [missing, setMissing] = useState(false)
  const needsReason = action !== 'retry'
  const onKeyDown = useModalKeys(dialogRef, onCancel, busy)
  const { verb } = verbOf(action)

  useEffect(() => {
    fallback.current = fallbackFocus
  })

  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null
    // The reason box when there is one; otherwise Cancel, so a stray Enter changes nothing.
    firstRef.current?.focus()
    return () => {
      if (opener && opener.isConnected) opener.focus()
      else fallback.current?.()
    }
  }, [])

  function submit(event: FormEvent) {
    event.preventDefault()
    if (busy) return
    const why = reason.trim()
    if (needsReason && !why) {
      setMissing(true)
      firstRef.current?.focus()
      return
    }
    onConfirm(why)
  }

  const describedBy = [reasonHelpId, missing ? reasonErrorId : ''].filter(Boolean).join(' ')
  return (
    <>
      <div
        ref={dialogRef}
        className="modal d-block"
        role="alertdialog"
        aria-modal="true"
        aria-labelledby={titleId}
        aria-describedby={bodyId}
        onKeyDown={onKeyDown}
      >
        <div className="modal-dialog modal-dialog-centered">
          <form className="modal-content" onSubmit={submit} noValidate>
            <div className="modal-header">
              <h2 className="modal-title fs-5" id={titleId}>
                {verb} {messages(count)}?
              </h2>
            </div>
            <div className="modal-body vstack gap-3">
              <div id={bodyId}>{children}</div>
              {needsReason && (
                <div>
                  <label htmlFor={reasonId} className="form-label fw-semibold">
                    Why? (required)
                  </label>
                  <textarea
                    ref={firstRef}
                    id={reasonId}
                    className={`form-control ${missing ? 'is-invalid' : ''}`}
                    rows={3}
                    maxLength={MAX_REASON}
                    required
                    aria-invalid={missing}
                    aria-describedby={describedBy}
                    value={reason}
                    onChange={(e) => {
                      setReason(e.target.value)
                      if (e.target.value.trim()) setMissing(false)
                    }}
                  />
                  <div id={reasonHelpId} className="form-text">
                    Saved in the audit log with your name. Up to {MAX_REASON} characters.
                  </div>
                  {missing && (
                    <div id={reasonErrorId} className="invalid-feedback d-block">
                      Say why, so the audit log explains it.
                    </div>
                  )}
                </div>
              )}
              {error && (
                <div className="alert alert-danger mb-0" role="alert">
                  {error}
                </div>
              )}
            </div>
            <div className="modal-footer flex-wrap">
              <button
                ref={needsReason ? undefined : firstRef}
                type="button"
                className="btn btn-secondary"
                onClick={onCancel}
                disabled={busy}
              >
                Cancel
              </button>
              <button type="submit" className={`btn ${action === 'retry' ? 'btn-primary' : 'btn-danger'}`} disabled={busy}>
                {busy ? 'Working…' : `${verb} ${messages(count)}`}
              </button>
            </div>
          </form>
        </div>
      </div>
      <div className="modal-backdrop show" />
    </>
  )
}
