import type { ReactNode } from 'react'

/** Show a centred spinner with a spoken label. */
export function Loading({ label }: { label: string }) {
  return (
    <div className="d-flex align-items-center justify-content-center gap-2 py-5" role="status" aria-live="polite">
      <div className="spinner-border spinner-border-sm text-secondary" aria-hidden="true" />
      <span>{label}</span>
    </div>
  )
}

type ProblemProps = {
  title: string
  children?: ReactNode
  onRetry?: () => void
  retryLabel?: string
  variant?: 'danger' | 'warning' | 'light'
}

/** Explain what went wrong (or that there is nothing) and offer a retry. */
export function Problem({ title, children, onRetry, retryLabel = 'Try again', variant = 'danger' }: ProblemProps) {
  return (
    <div className={`alert alert-${variant} d-flex flex-column flex-sm-row align-items-sm-center gap-2`} role={variant === 'light' ? 'status' : 'alert'}>
      <div className="flex-grow-1">
        <strong className="d-block">{title}</strong>
        {children && <span>{children}</span>}
      </div>
      {onRetry && (
        <button type="button" className="btn btn-outline-secondary btn-sm" onClick={onRetry}>
          {retryLabel}
        </button>
      )}
    </div>
  )
}
