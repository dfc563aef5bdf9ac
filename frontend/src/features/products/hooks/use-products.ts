import { useCallback, useEffect, useRef, useState } from 'react'
import { errorMessage } from '@/lib/api-client'
import { getProducts } from '../api/get-products'
import type { Product } from '../api/types'

type State = { status: 'loading' | 'ready' | 'error'; products: Product[]; error: string | null }

/** Load the admin product list and refresh it every pollMs (0 = no polling). */
export function useProducts(pollMs: number) {
  const [state, setState] = useState<State>({ status: 'loading', products: [], error: null })
  const controller = useRef<AbortController | null>(null)

  const load = useCallback(async () => {
    controller.current?.abort()
    const ctrl = new AbortController()
    controller.current = ctrl
    try {
      const products = await getProducts(ctrl.signal)
      if (!ctrl.signal.aborted) setState({ status: 'ready', products, error: null })
    } catch (err) {
      if (ctrl.signal.aborted) return
      // Keep showing the last good list when a background refresh fails.
      setState((s) => ({ ...s, status: s.status === 'ready' ? 'ready' : 'error', error: errorMessage(err) }))
    }
  }, [])

  const refresh = useCallback(() => {
    setState((s) => (s.status === 'error' ? { ...s, status: 'loading' } : s))
    void load()
  }, [load])

  useEffect(() => {
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const tick = async () => {
      if (!document.hidden) await load()
      if (!stopped && pollMs > 0) timer = setTimeout(tick, pollMs)
    }
    void tick()
    return () => {
      stopped = true
      clearTimeout(timer)
      controller.current?.abort()
    }
  }, [load, pollMs])

  const removeLocally = useCallback((id: number) => {
    setState((s) => ({ ...s, products: s.products.filter((p) => p.id !== id) }))
  }, [])

  return { ...state, refresh, removeLocally }
}
