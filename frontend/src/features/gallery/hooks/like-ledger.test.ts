import { makeGalleryProduct } from '@/testing/mocks/backend'
import { createLikeLedger } from './like-ledger'

const lamp = makeGalleryProduct({ id: 7, title: 'Lamp', likes: 4 })

describe('like ledger', () => {
  it('shows a like in flight over any list that lands meanwhile, and remembers the newest count for a rollback', () => {
    const ledger = createLikeLedger()
    expect(ledger.begin(lamp, true)).toEqual({ likes: 5, liked: true })
    const poll = ledger.stamp()

    expect(ledger.reconcile([{ ...lamp, likes: 6 }], poll)).toEqual([{ ...lamp, likes: 5, liked: true }])
    expect(ledger.rollback(lamp.id)).toEqual({ likes: 6, liked: false })
    expect(ledger.isPending(lamp.id)).toBe(false)
  })

  it('refuses a second like of the same product while one is in flight', () => {
    const ledger = createLikeLedger()
    ledger.begin(lamp, true)
    expect(ledger.begin({ ...lamp, likes: 5, liked: true }, false)).toBeNull()
    expect([...ledger.pendingIds()]).toEqual([lamp.id])
  })

  it('keeps the settled count over a list fetched before it, not over one fetched after', () => {
    const ledger = createLikeLedger()
    ledger.begin(lamp, true)
    const before = ledger.stamp()
    ledger.settle(lamp.id, { likes: 9, liked: true })
    const after = ledger.stamp()

    expect(ledger.reconcile([lamp], before)).toEqual([{ ...lamp, likes: 9, liked: true }])
    expect(ledger.reconcile([{ ...lamp, likes: 10, liked: true }], after)).toEqual([{ ...lamp, likes: 10, liked: true }])
  })

  it('keeps a removed product out of a list fetched before the removal', () => {
    const ledger = createLikeLedger()
    const other = makeGalleryProduct({ id: 8 })
    ledger.begin(lamp, true)
    const before = ledger.stamp()
    ledger.remove(lamp.id)

    expect(ledger.reconcile([lamp, other], before)).toEqual([other])
    expect(ledger.reconcile([lamp, other], ledger.stamp())).toEqual([lamp, other])
  })

  it('tells subscribers when the set of likes in flight changes', () => {
    const ledger = createLikeLedger()
    const seen: number[][] = []
    const stop = ledger.subscribe(() => seen.push([...ledger.pendingIds()]))
    ledger.begin(lamp, true)
    ledger.settle(lamp.id, { likes: 5, liked: true })
    stop()
    ledger.begin(lamp, false)
    expect(seen).toEqual([[7], []])
  })
})
