import { useCallback, useEffect, useMemo, useReducer, useRef } from 'react'
import { useToast } from '@/components/ui/toast-context'
import { ApiError, errorMessage } from '@/lib/api-client'
import { getGalleryProducts } from '../api/get-gallery-products'
import { likeProduct, unlikeProduct } from '../api/like-product'
import type { GalleryProduct } from '../api/types'

type Overlay = { liked: boolean; likes: number }

type State = {
  status: 'loading' | 'ready' | 'error'
  products: GalleryProduct[]
  loadError: string | null
  refreshError: string | null
  /** Optimistic values for likes still in flight, shown over the server's. */
  overlays: Record<number, Overlay>
  /** Sequence number at which each product's last like/unlike settled. */
  settledAt: Record<number, number>
}

type Action =
  | { type: 'loading' }
  | { type: 'loaded'; products: GalleryProduct[]; startSeq: number }
  | { type: 'failed'; message: string }
  | { type: 'optimistic'; id: number; overlay: Overlay }
  | { type: 'settled'; id: number; seq: number; result: Overlay | null }
  | { type: 'removed'; id: number }

const initialState: State = {
  status: 'loading',
  products: [],
  loadError: null,
  refreshError: null,
  overlays: {},
  settledAt: {},
}

function withoutKey<T>(record: Record<number, T>, id: number): Record<number, T> {
  const copy = { ...record }
  delete copy[id]
  return copy
}

/** Apply one gallery event; exported so the merge rules can be tested on their own. */
export function galleryReducer(state: State, action: Action): State {
  switch (action.type) {
    case 'loading':
      return state.products.length ? state : { ...state, status: 'loading', loadError: null }
    case 'loaded': {
      const previous = new Map(state.products.map((p) => [p.id, p]))
      const products = action.products.map((incoming) => {
        // A list fetched before our own like settled is older than what the like returned.
        const mine = previous.get(incoming.id)
        const settled = state.settledAt[incoming.id]
        if (mine && settled !== undefined && settled > action.startSeq) {
          return { ...incoming, likes: mine.likes, liked: mine.liked }
        }
        return incoming
      })
      return { ...state, status: 'ready', products, loadError: null, refreshError: null }
    }
    case 'failed':
      return state.status === 'loading' || state.status === 'error'
        ? { ...state, status: 'error', loadError: action.message }
        : { ...state, refreshError: action.message }
    case 'optimistic':
      return { ...state, overlays: { ...state.overlays, [action.id]: action.overlay } }
    case 'settled': {
      const overlays = withoutKey(state.overlays, action.id)
      if (!action.result) return { ...state, overlays }
      const result = action.result
      return {
        ...state,
        overlays,
        settledAt: { ...state.settledAt, [action.id]: action.seq },
        products: state.products.map((p) => (p.id === action.id ? { ...p, ...result } : p)),
      }
    }
    case 'removed':
      return {
        ...state,
        overlays: withoutKey(state.overlays, action.id),
        products: state.products.filter((p) => p.id !== action.id),
      }
  }
}

/** Load the gallery, keep it fresh by polling, and like/unlike optimistically. */
export function useGallery(pollMs: number) {
  const [state, dispatch] = useReducer(galleryReducer, initialState)
  const toast = useToast()
  const seq = useRef(0)
  const inFlight = useRef(new Set<number>())
  const controller = useRef<AbortController | null>(null)

  const load = useCallback(async () => {
    controller.current?.abort()
    const ctrl = new AbortController()
    controller.current = ctrl
    const startSeq = ++seq.current
    try {
      const products = await getGalleryProducts(ctrl.signal)
      if (ctrl.signal.aborted) return
      dispatch({ type: 'loaded', products: Array.isArray(products) ? products : [], startSeq })
    } catch (err) {
      if (ctrl.signal.aborted) return
      dispatch({ type: 'failed', message: errorMessage(err) })
    }
  }, [])

  const refresh = useCallback(() => {
    dispatch({ type: 'loading' })
    void load()
  }, [load])

  useEffect(() => {
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const tick = async () => {
      // A hidden tab does not need fresh likes; catch up when it is shown again.
      if (typeof document === 'undefined' || !document.hidden) await load()
      if (!stopped) timer = setTimeout(tick, pollMs)
    }
    void tick()
    const onVisible = () => {
      if (!document.hidden) void load()
    }
    document.addEventListener('visibilitychange', onVisible)
    return () => {
      stopped = true
      clearTimeout(timer)
      document.removeEventListener('visibilitychange', onVisible)
      controller.current?.abort()
    }
  }, [load, pollMs])

  const toggleLike = useCallback(
    async (product: GalleryProduct) => {
      if (inFlight.current.has(product.id)) return
      inFlight.current.add(product.id)
      const liked = !product.liked
      const overlay = { liked, likes: Math.max(0, product.likes + (liked ? 1 : -1)) }
      dispatch({ type: 'optimistic', id: product.id, overlay })
      try {
        const result = await (liked ? likeProduct(product.id) : unlikeProduct(product.id))
        dispatch({ type: 'settled', id: product.id, seq: ++seq.current, result: { likes: result.likes, liked: result.liked } })
      } catch (err) {
        if (err instanceof ApiError && (err.code === 'already_liked' || err.code === 'not_liked')) {
          // The server already has the state we asked for (another tab, a double click): show it and re-read the count.
          dispatch({
            type: 'settled',
            id: product.id,
            seq: ++seq.current,
            result: { liked: err.code === 'already_liked', likes: overlay.likes },
          })
          void load()
        } else if (err instanceof ApiError && err.status === 404) {
          // Deleted by an admin and not yet gone from our list: not the shopper's fault.
          dispatch({ type: 'removed', id: product.id })
          toast.show('info', `“${product.title}” is no longer available.`)
        } else {
          dispatch({ type: 'settled', id: product.id, seq: ++seq.current, result: null })
          toast.show('danger', `Couldn't ${liked ? 'like' : 'unlike'} “${product.title}”: ${errorMessage(err)}`)
        }
      } finally {
        inFlight.current.delete(product.id)
      }
    },
    [load, toast],
  )

  const products = useMemo(
    () => state.products.map((p) => (state.overlays[p.id] ? { ...p, ...state.overlays[p.id] } : p)),
    [state.products, state.overlays],
  )

  return {
    status: state.status,
    products,
    pending: state.overlays,
    loadError: state.loadError,
    refreshError: state.refreshError,
    refresh,
    toggleLike,
  }
}
