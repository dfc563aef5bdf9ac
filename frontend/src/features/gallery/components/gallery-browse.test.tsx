import { act, screen, waitFor, within } from '@testing-library/react'
import { http } from 'msw'
import { server } from '@/testing/mocks/server'
import { ORIGIN, createGalleryBackend, makeGalleryProduct } from '@/testing/mocks/backend'
import { renderApp } from '@/testing/test-utils'
import type { GalleryProduct } from '../api/types'

const CATALOGUE: GalleryProduct[] = [
  makeGalleryProduct({ id: 1, title: 'Red mug', likes: 5 }),
  makeGalleryProduct({ id: 2, title: 'Blue cup', likes: 9 }),
  makeGalleryProduct({ id: 3, title: 'Green mug', likes: 1 }),
]

function useBackend(products: GalleryProduct[] = CATALOGUE) {
  const backend = createGalleryBackend({ products })
  server.use(...backend.handlers)
  return backend
}

/** The titles of the cards on screen, in order. */
function shownTitles() {
  return screen.queryAllByRole('article').map((card) => card.getAttribute('aria-label'))
}

function lastRequest(backend: ReturnType<typeof createGalleryBackend>) {
  return Object.fromEntries(backend.state.requests[backend.state.requests.length - 1])
}

function manyProducts(count: number) {
  return Array.from({ length: count }, (_, i) => makeGalleryProduct({ id: i + 1, title: `Item ${i + 1}` }))
}

describe('Gallery search, order and pages', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('shows the newest first, one page of 24 at a time', async () => {
    const backend = useBackend()
    renderApp('/')

    await waitFor(() => expect(shownTitles()).toEqual(['Green mug', 'Blue cup', 'Red mug']))
    expect(lastRequest(backend)).toEqual({ sort: 'newest', limit: '24' })
    expect(screen.getByText('Showing 3 products')).toBeInTheDocument()
    expect(screen.queryByRole('button', { name: 'Load more' })).not.toBeInTheDocument()
  })

  it('searches once typing pauses, keeping the search in the URL without a history entry per key', async () => {
    const backend = useBackend()
    const { user, router } = renderApp('/')
    await screen.findByRole('article', { name: 'Blue cup' })

    await user.type(screen.getByRole('searchbox', { name: 'Search products' }), 'mug')

    await waitFor(() => expect(router.state.location.search).toBe('?q=mug'))
    expect(router.state.historyAction).toBe('REPLACE')
    await waitFor(() => expect(shownTitles()).toEqual(['Green mug', 'Red mug']))
    expect(lastRequest(backend)).toEqual({ sort: 'newest', limit: '24', search: 'mug' })
    const searches = backend.state.requests.map((params) => params.get('search')).filter(Boolean)
    expect(searches).toEqual(['mug']) // not m, mu, mug
    expect(screen.getByText('Showing 2 products')).toBeInTheDocument()
  })

  it('orders by most liked as a new history entry', async () => {
    const backend = useBackend()
    const { user, router } = renderApp('/')
    await screen.findByRole('article', { name: 'Blue cup' })

    await user.selectOptions(screen.getByRole('combobox', { name: 'Sort by' }), 'Most liked')

    await waitFor(() => expect(shownTitles()).toEqual(['Blue cup', 'Red mug', 'Green mug']))
    expect(router.state.location.search).toBe('?sort=liked')
    expect(router.state.historyAction).toBe('PUSH')
    expect(lastRequest(backend)).toEqual({ sort: 'liked', limit: '24' })
  })

  it('opens a shared link with its search and order, and Back and Forward restore them', async () => {
    const backend = useBackend()
    const { user, router } = renderApp('/?q=mug&sort=liked')

    await waitFor(() => expect(shownTitles()).toEqual(['Red mug', 'Green mug']))
    expect(lastRequest(backend)).toEqual({ sort: 'liked', limit: '24', search: 'mug' })
    expect(screen.getByRole('searchbox', { name: 'Search products' })).toHaveValue('mug')
    expect(screen.getByRole('combobox', { name: 'Sort by' })).toHaveValue('liked')

    await user.selectOptions(screen.getByRole('combobox', { name: 'Sort by' }), 'Newest')
    await waitFor(() => expect(shownTitles()).toEqual(['Green mug', 'Red mug']))
    expect(router.state.location.search).toBe('?q=mug')

    await act(() => router.navigate(-1))
    expect(router.state.location.search).toBe('?q=mug&sort=liked')
    await waitFor(() => expect(shownTitles()).toEqual(['Red mug', 'Green mug']))
    expect(screen.getByRole('combobox', { name: 'Sort by' })).toHaveValue('liked')

    await act(() => router.navigate(1))
    await waitFor(() => expect(shownTitles()).toEqual(['Green mug', 'Red mug']))
    expect(screen.getByRole('combobox', { name: 'Sort by' })).toHaveValue('newest')
    expect(screen.getByRole('searchbox', { name: 'Search products' })).toHaveValue('mug')
  })

  it('puts the search box back to what the URL says on Back', async () => {
    useBackend()
    const { user, router } = renderApp('/')
    await screen.findByRole('article', { name: 'Blue cup' })
    await user.selectOptions(screen.getByRole('combobox', { name: 'Sort by' }), 'Most liked')
    await user.type(screen.getByRole('searchbox', { name: 'Search products' }), 'cup')
    await waitFor(() => expect(router.state.location.search).toBe('?sort=liked&q=cup'))
    await waitFor(() => expect(shownTitles()).toEqual(['Blue cup']))

    await act(() => router.navigate(-1)) // the typing replaced the sorted entry: Back leaves both
    expect(router.state.location.search).toBe('')
    expect(screen.getByRole('searchbox', { name: 'Search products' })).toHaveValue('')
    await waitFor(() => expect(shownTitles()).toEqual(['Green mug', 'Blue cup', 'Red mug']))
  })

  it('says when nothing matches and clears the search', async () => {
    useBackend()
    const { user, router } = renderApp('/?q=zzz')

    expect(await screen.findByText('No products match “zzz”.')).toBeInTheDocument()
    await user.click(screen.getByRole('button', { name: 'Clear search' }))

    await waitFor(() => expect(shownTitles()).toEqual(['Green mug', 'Blue cup', 'Red mug']))
    expect(router.state.location.search).toBe('')
    expect(screen.getByRole('searchbox', { name: 'Search products' })).toHaveValue('')
  })

  it('keeps the last list on screen while a new search loads', async () => {
    const backend = createGalleryBackend({ products: CATALOGUE })
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    server.use(
      http.get(`${ORIGIN}/flask/api/products`, async ({ request }) => {
        if (new URL(request.url).searchParams.get('search')) await held
      }),
      ...backend.handlers,
    )
    const { user } = renderApp('/')
    await screen.findByRole('article', { name: 'Blue cup' })

    await user.type(screen.getByRole('searchbox', { name: 'Search products' }), 'cup')
    expect(await screen.findByText('Searching…')).toBeInTheDocument()
    expect(shownTitles()).toEqual(['Green mug', 'Blue cup', 'Red mug'])
    expect(screen.queryByText('Loading products…')).not.toBeInTheDocument()

    release()
    await waitFor(() => expect(shownTitles()).toEqual(['Blue cup']))
    expect(screen.getByText('Showing 1 product')).toBeInTheDocument()
  })

  it('loads the next page with the cursor when asked', async () => {
    const backend = useBackend(manyProducts(30))
    const { user } = renderApp('/')

    await waitFor(() => expect(shownTitles()).toHaveLength(24))
    expect(shownTitles()[0]).toBe('Item 30')
    expect(screen.getByText('Showing 24 products')).toBeInTheDocument()
    await user.click(screen.getByRole('button', { name: 'Load more' }))

    await waitFor(() => expect(shownTitles()).toHaveLength(30))
    expect(shownTitles().slice(-2)).toEqual(['Item 2', 'Item 1'])
    expect(lastRequest(backend)).toEqual({ sort: 'newest', limit: '24', cursor: expect.any(String) })
    expect(screen.getByText('Showing 30 products')).toBeInTheDocument()
    expect(screen.queryByRole('button', { name: 'Load more' })).not.toBeInTheDocument()
  })

  it('loads the next page by itself when the end of the list comes into view', async () => {
    const observers: { callback: IntersectionObserverCallback; target?: Element }[] = []
    vi.stubGlobal(
      'IntersectionObserver',
      class {
        record: { callback: IntersectionObserverCallback; target?: Element }
        constructor(callback: IntersectionObserverCallback) {
          this.record = { callback }
          observers.push(this.record)
        }
        observe(target: Element) {
          this.record.target = target
        }
        disconnect() {}
      },
    )
    const backend = useBackend(manyProducts(30))
    renderApp('/')
    await waitFor(() => expect(shownTitles()).toHaveLength(24))
    const watching = observers[observers.length - 1]
    expect(watching.target).toContainElement(screen.getByRole('button', { name: 'Load more' }))

    act(() => watching.callback([{ isIntersecting: true } as IntersectionObserverEntry], {} as IntersectionObserver))

    await waitFor(() => expect(shownTitles()).toHaveLength(30))
    expect(lastRequest(backend).cursor).toEqual(expect.any(String))
  })

  it('keeps liking on a later page', async () => {
    const backend = useBackend(manyProducts(30))
    const { user } = renderApp('/')
    await user.click(await screen.findByRole('button', { name: 'Load more' }))
    const card = await screen.findByRole('article', { name: 'Item 1' })

    await user.click(within(card).getByRole('button', { name: 'Like Item 1' }))

    expect(await within(card).findByRole('button', { name: 'Unlike Item 1' })).toHaveAttribute('aria-busy', 'false')
    expect(within(card).getByTestId('like-count')).toHaveTextContent('1 like')
    expect(backend.state.products.find((p) => p.id === 1)?.likes).toBe(1)
  })
})
