import { useState } from 'react'
import { useIsFetching } from '@tanstack/react-query'
import { deadLettersKey, useOverview, useRefreshAll } from '../hooks/use-dead-letters'
import { ServicePanel } from './service-panel'
import './dead-letters.css'

/** Both services' dead letters side by side, with one refresh and one place that announces results. */
export function DeadLettersWorkbench() {
  const [announcement, setAnnouncement] = useState<{ text: string; n: number }>({ text: '', n: 0 })
  const refreshAll = useRefreshAll()
  const fetching = useIsFetching({ queryKey: deadLettersKey }) > 0
  const admin = useOverview('admin', null)
  const main = useOverview('main', null)
  const healthy = admin.data?.depth === 0 && main.data?.depth === 0 && !admin.isError && !main.isError

  const announce = (text: string) => setAnnouncement((prev) => ({ text, n: prev.n + 1 }))

  async function refresh() {
    await refreshAll()
    announce('Dead letters refreshed.')
  }

  return (
    <div className="vstack gap-3">
      <div className="d-flex flex-wrap align-items-center justify-content-between gap-2">
        <h1 className="h3 mb-0">Dead letters</h1>
        <button type="button" className="btn btn-outline-primary" onClick={() => void refresh()} aria-busy={fetching}>
          {fetching && <span className="spinner-border spinner-border-sm" aria-hidden="true" />}
          Refresh
        </button>
      </div>
      <p className="text-body-secondary mb-0">
        Events a service could not apply wait here. Fix the cause, then retry them; discard or archive the ones that should
        never be applied.
      </p>
      {/* Results of actions are spoken here; the key makes a repeated sentence be read again. */}
      <div role="status" aria-live="polite" aria-atomic="true">
        {announcement.text && (
          <div key={announcement.n} className="alert alert-info mb-0">
            {announcement.text}
          </div>
        )}
      </div>
      {healthy && (
        <div className="alert alert-success mb-0">
          <strong>No dead letters: every event was applied.</strong> The pipeline is healthy.
        </div>
      )}
      <div className="row g-3">
        <div className="col-12 col-lg-6">
          <ServicePanel service="admin" onAnnounce={announce} />
        </div>
        <div className="col-12 col-lg-6">
          <ServicePanel service="main" onAnnounce={announce} />
        </div>
      </div>
    </div>
  )
}
