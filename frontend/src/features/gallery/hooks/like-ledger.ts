import type { QueryClient } from '@tanstack/react-query'
import type { GalleryProduct } from '../api/types'

export type LikeCounts = { likes: number; liked: boolean }

type Entry =
  /** A like or unlike in flight: shown over any list; `base` is the server's last word, for a rollback. */
  | { state: 'pending'; optimistic: LikeCounts; base: LikeCounts }
  /** What the server answered at tick `at`: newer than any list fetched before it. */
  | { state: 'settled'; at: number; counts: LikeCounts }
  /** Gone (404) at tick `at`: a list fetched before it still has it and must not bring it back. */
  | { state: 'removed'; at: number }

/**
 * Remember this shopper's likes so a list fetched earlier cannot undo them.
 *
 * A poll that started before a like settled carries the count from before the like; TanStack
 * would store it over the like's answer. Every list fetch takes a tick with `stamp()` when it
 * starts and passes its products through `reconcile()` when it lands.
 */
export function createLikeLedger() {
  let clock = 0
  const entries = new Map<number, Entry>()
  let pending: ReadonlySet<number> = new Set()
  const listeners = new Set<() => void>()

  function setPending(id: number, inFlight: boolean) {
    if (pending.has(id) === inFlight) return
    const next = new Set(pending)
    if (inFlight) next.add(id)
    else next.delete(id)
    pending = next
    listeners.forEach((listener) => listener())
  }

  return {
    /** Take a tick at the start of a list fetch. */
    stamp(): number {
      return ++clock
    },

    isPending(id: number): boolean {
      return pending.has(id)
    },

    /** Start a like (liked=true) or unlike of product; null if one is already in flight for it. */
    begin(product: GalleryProduct, liked: boolean): LikeCounts | null {
      if (pending.has(product.id)) return null
      const optimistic = { liked, likes: Math.max(0, product.likes + (liked ? 1 : -1)) }
      entries.set(product.id, { state: 'pending', optimistic, base: { likes: product.likes, liked: product.liked } })
      setPending(product.id, true)
      return optimistic
    },

    /** Record the server's answer for id (or what an already_liked/not_liked implies). */
    settle(id: number, counts: LikeCounts): void {
      entries.set(id, { state: 'settled', at: ++clock, counts })
      setPending(id, false)
    },

    /** Give up a failed like; return the counts to show again (the server's last word). */
    rollback(id: number): LikeCounts | null {
      const entry = entries.get(id)
      entries.delete(id)
      setPending(id, false)
      return entry?.state === 'pending' ? entry.base : null
    },

    /** Record that the product no longer exists. */
    remove(id: number): void {
      entries.set(id, { state: 'removed', at: ++clock })
      setPending(id, false)
    },

    /** Lay what this shopper did over a list whose fetch started at tick startedAt. */
    reconcile(products: GalleryProduct[], startedAt: number): GalleryProduct[] {
      const out: GalleryProduct[] = []
      for (const product of products) {
        const entry = entries.get(product.id)
        if (!entry) out.push(product)
        else if (entry.state === 'pending') {
          entry.base = { likes: product.likes, liked: product.liked }
          out.push({ ...product, ...entry.optimistic })
        } else if (entry.at < startedAt) out.push(product)
        else if (entry.state === 'settled') out.push({ ...product, ...entry.counts })
        // else: removed after this fetch started; leave it out.
      }
      return out
    },

    /** useSyncExternalStore's subscribe for the ids with a like in flight. */
    subscribe(listener: () => void): () => void {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },

    /** The ids with a like in flight (a new set after each change). */
    pendingIds(): ReadonlySet<number> {
      return pending
    },
  }
}

export type LikeLedger = ReturnType<typeof createLikeLedger>

const ledgers = new WeakMap<QueryClient, LikeLedger>()

/** The ledger of a query cache: it lives as long as the cached lists it protects. */
export function likeLedgerFor(client: QueryClient): LikeLedger {
  let ledger = ledgers.get(client)
  if (!ledger) {
    ledger = createLikeLedger()
    ledgers.set(client, ledger)
  }
  return ledger
}
