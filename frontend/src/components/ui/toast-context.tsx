import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react'

export type ToastKind = 'success' | 'danger' | 'info'
type Toast = { id: number; kind: ToastKind; message: string }
type ToastApi = { show: (kind: ToastKind, message: string) => void }

const ToastContext = createContext<ToastApi | null>(null)
const DISMISS_AFTER_MS = 6000

/** Hold the toast queue and render it in a live region. */
export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([])
  const nextId = useRef(1)
  const timers = useRef(new Map<number, ReturnType<typeof setTimeout>>())

  const dismiss = useCallback((id: number) => {
    setToasts((current) => current.filter((t) => t.id !== id))
    const timer = timers.current.get(id)
    if (timer) clearTimeout(timer)
    timers.current.delete(id)
  }, [])

  const show = useCallback(
    (kind: ToastKind, message: string) => {
      const id = nextId.current++
      setToasts((current) => [...current.slice(-3), { id, kind, message }])
      timers.current.set(
        id,
        setTimeout(() => dismiss(id), DISMISS_AFTER_MS),
      )
    },
    [dismiss],
  )

  useEffect(() => {
    const pending = timers.current
    return () => pending.forEach((timer) => clearTimeout(timer))
  }, [])

  const api = useMemo(() => ({ show }), [show])

  return (
    <ToastContext.Provider value={api}>
      {children}
      {/* Clicks pass between toasts (the container takes none), and the page keeps room at its
          bottom (.toast-room) so anything under a toast can be scrolled clear of it. */}
      <div className="toast-container toast-area position-fixed bottom-0 end-0 p-3" style={{ zIndex: 1090 }}>
        {toasts.map((t) => (
          <div
            key={t.id}
            className={`toast show align-items-center text-bg-${t.kind} border-0`}
            role={t.kind === 'danger' ? 'alert' : 'status'}
            aria-live={t.kind === 'danger' ? 'assertive' : 'polite'}
            aria-atomic="true"
          >
            <div className="d-flex">
              <div className="toast-body">{t.message}</div>
              <button
                type="button"
                className={`btn-close ${t.kind === 'info' ? '' : 'btn-close-white'} me-2 m-auto`}
                aria-label="Close notification"
                onClick={() => dismiss(t.id)}
              />
            </div>
          </div>
        ))}
      </div>
    </ToastContext.Provider>
  )
}

/** Return the toast API; must be used under ToastProvider. */
export function useToast(): ToastApi {
  const ctx = useContext(ToastContext)
  if (!ctx) throw new Error('useToast must be used inside <ToastProvider>')
  return ctx
}
