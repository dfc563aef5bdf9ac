import { act, fireEvent, screen, waitFor, within } from '@testing-library/react'
import { http, HttpResponse, delay } from 'msw'
import { server } from '@/testing/mocks/server'
import { ORIGIN, makeGalleryProduct } from '@/testing/mocks/backend'
import { createMemoryRouter, RouterProvider } from 'react-router'
import { renderWithProviders } from '@/testing/test-utils'
import type { GalleryProduct } from '../api/types'
import { Gallery } from './gallery'

const LIST = `${ORIGIN}/flask/api/products`
const LIKE = `${ORIGIN}/flask/api/products/:id/like`
const POLL_OFF = 600_000

function serveList(products: GalleryProduct[] | (() => GalleryProduct[])) {
  server.use(http.get(LIST, () => HttpResponse.json(typeof products === 'function' ? products() : products)))
}

/** A promise the test resolves by hand, to look at the page while a request is in flight. */
function gate() {
  let open!: () => void
  const opened = new Promise<void>((resolve) => (open = resolve))
  return { open, opened }
}

/** Render the gallery alone at `path`, under a router (it keeps its search in the URL). */
function renderGallery(pollMs: number, path = '/') {
  const router = createMemoryRouter([{ path: '/', element: <Gallery pollMs={pollMs} /> }], { initialEntries: [path] })
  return { ...renderWithProviders(<RouterProvider router={router} />), router }
}

function card(title: string) {
  return screen.getByRole('article', { name: title })
}

describe('Gallery', () => {
  it('shows each product with its title, like count and image', async () => {
    serveList([makeGalleryProduct({ id: 1, title: 'Red mug', likes: 3 }), makeGalleryProduct({ id: 2, title: 'Blue cup', likes: 1 })])
    renderGallery(POLL_OFF)

    expect(screen.getByRole('status')).toHaveTextContent('Loading products…')
    expect(await screen.findByRole('heading', { name: 'Red mug' })).toBeInTheDocument()
    expect(within(card('Red mug')).getByText('3 likes')).toBeInTheDocument()
    expect(within(card('Blue cup')).getByText('1 like')).toBeInTheDocument()
    expect(within(card('Red mug')).getByRole('img', { name: 'Red mug' })).toHaveAttribute('src', 'https://img.example.com/1.jpg')
  })

  it('likes at once, then shows the count the server returned', async () => {
    const release = gate()
    serveList([makeGalleryProduct({ id: 7, title: 'Lamp', likes: 4 })])
    server.use(
      http.post(LIKE, async ({ params }) => {
        await release.opened
        // Someone else liked it meanwhile: the server's count wins over our +1.
        return HttpResponse.json({ id: Number(params.id), likes: 9, liked: true })
      }),
    )
    const { user } = renderGallery(POLL_OFF)
    await user.click(await screen.findByRole('button', { name: 'Like Lamp' }))

    expect(within(card('Lamp')).getByText('5 likes')).toBeInTheDocument()
    expect(within(card('Lamp')).getByRole('button', { name: 'Unlike Lamp' })).toHaveAttribute('aria-busy', 'true')

    release.open()
    expect(await within(card('Lamp')).findByText('9 likes')).toBeInTheDocument()
    expect(within(card('Lamp')).getByRole('button', { name: 'Unlike Lamp' })).toHaveAttribute('aria-busy', 'false')
  })

  it('rolls back and says so when the like fails', async () => {
    serveList([makeGalleryProduct({ id: 3, title: 'Chair', likes: 2 })])
    server.use(http.post(LIKE, () => HttpResponse.json({ error: 'internal', detail: 'Database unavailable' }, { status: 503 })))
    const { user } = renderGallery(POLL_OFF)
    await user.click(await screen.findByRole('button', { name: 'Like Chair' }))

    expect(await screen.findByRole('alert')).toHaveTextContent('Couldn\'t like “Chair”: Database unavailable')
    expect(within(card('Chair')).getByText('2 likes')).toBeInTheDocument()
    expect(within(card('Chair')).getByRole('button', { name: 'Like Chair' })).toBeInTheDocument()
  })

  it('shows an already liked product as liked and unlikes it with DELETE', async () => {
    serveList([makeGalleryProduct({ id: 5, title: 'Vase', likes: 1, liked: true })])
    const methods: string[] = []
    server.use(
      http.delete(LIKE, ({ request, params }) => {
        methods.push(request.method)
        return HttpResponse.json({ id: Number(params.id), likes: 0, liked: false })
      }),
    )
    const { user } = renderGallery(POLL_OFF)
    await user.click(await screen.findByRole('button', { name: 'Unlike Vase' }))

    expect(await within(card('Vase')).findByText('0 likes')).toBeInTheDocument()
    expect(within(card('Vase')).getByRole('button', { name: 'Like Vase' })).toBeInTheDocument()
    expect(methods).toEqual(['DELETE'])
  })

  it('treats 400 already_liked as liked and re-reads the count', async () => {
    let liked = false
    server.use(http.get(LIST, () => HttpResponse.json([makeGalleryProduct({ id: 8, title: 'Rug', likes: liked ? 6 : 5, liked })])))
    server.use(
      http.post(LIKE, () => {
        liked = true // liked in another tab before this click arrived
        return HttpResponse.json({ error: 'already_liked' }, { status: 400 })
      }),
    )
    const { user } = renderGallery(POLL_OFF)
    await user.click(await screen.findByRole('button', { name: 'Like Rug' }))

    expect(await within(card('Rug')).findByText('6 likes')).toBeInTheDocument()
    expect(within(card('Rug')).getByRole('button', { name: 'Unlike Rug' })).toBeInTheDocument()
    expect(screen.queryByRole('alert')).not.toBeInTheDocument()
  })

  it('treats 404 not_liked on unlike as not liked, without removing the product', async () => {
    let liked = true
    server.use(http.get(LIST, () => HttpResponse.json([makeGalleryProduct({ id: 4, title: 'Bench', likes: liked ? 3 : 2, liked })])))
    server.use(
      http.delete(LIKE, () => {
        liked = false // unliked in another tab first
        return HttpResponse.json({ error: 'not_liked', detail: 'You do not like product 4.' }, { status: 404 })
      }),
    )
    const { user } = renderGallery(POLL_OFF)
    await user.click(await screen.findByRole('button', { name: 'Unlike Bench' }))

    expect(await within(card('Bench')).findByRole('button', { name: 'Like Bench' })).toBeInTheDocument()
    expect(await within(card('Bench')).findByText('2 likes')).toBeInTheDocument()
    expect(screen.queryByText(/no longer available/)).not.toBeInTheDocument()
  })

  it('drops a product that was deleted meanwhile without calling it an error', async () => {
    serveList([makeGalleryProduct({ id: 1, title: 'Kept' }), makeGalleryProduct({ id: 2, title: 'Gone' })])
    server.use(http.post(LIKE, () => HttpResponse.json({ error: 'not_found', detail: 'Product 2 does not exist.' }, { status: 404 })))
    const { user } = renderGallery(POLL_OFF)
    await user.click(await screen.findByRole('button', { name: 'Like Gone' }))

    expect(await screen.findByText('“Gone” is no longer available.')).toBeInTheDocument()
    expect(screen.queryByRole('article', { name: 'Gone' })).not.toBeInTheDocument()
    expect(card('Kept')).toBeInTheDocument()
    expect(screen.queryByRole('alert')).not.toBeInTheDocument()
  })

  it('says there are no products yet and can check again', async () => {
    let products: GalleryProduct[] = []
    serveList(() => products)
    const { user } = renderGallery(POLL_OFF)

    expect(await screen.findByText('No products yet.')).toBeInTheDocument()
    products = [makeGalleryProduct({ id: 1, title: 'First' })]
    await user.click(screen.getByRole('button', { name: 'Check again' }))
    expect(await screen.findByRole('article', { name: 'First' })).toBeInTheDocument()
  })

  it('explains a failed load and recovers on retry', async () => {
    let fail = true
    server.use(
      http.get(LIST, () =>
        fail
          ? HttpResponse.json({ error: 'unavailable', detail: 'Service unavailable' }, { status: 503 })
          : HttpResponse.json([makeGalleryProduct({ title: 'Back' })]),
      ),
    )
    const { user } = renderGallery(POLL_OFF)

    const alert = await screen.findByRole('alert')
    expect(alert).toHaveTextContent("We couldn't load the products.")
    expect(alert).toHaveTextContent('Service unavailable')
    fail = false
    await user.click(within(alert).getByRole('button', { name: 'Try again' }))
    expect(await screen.findByRole('article', { name: 'Back' })).toBeInTheDocument()
  })

  it('clamps a long title on screen but keeps all of it for hover and screen readers', async () => {
    const title = `A very long product title ${'that goes on '.repeat(12)}and ends here`
    serveList([makeGalleryProduct({ id: 1, title })])
    renderGallery(POLL_OFF)

    const heading = await screen.findByRole('heading', { name: title })
    expect(heading).toHaveAttribute('title', title)
    expect(heading).toHaveClass('gallery-card-title')
    expect(card(title)).toBeInTheDocument()
    expect(within(card(title)).getByRole('button', { name: `Like ${title}` })).toHaveClass('gallery-like-button')
  })

  it('shows a placeholder when an image does not load', async () => {
    serveList([makeGalleryProduct({ id: 1, title: 'Broken', image: 'https://img.example.com/missing.jpg' })])
    renderGallery(POLL_OFF)
    const img = await screen.findByRole('img', { name: 'Broken' })
    fireEvent.error(img)
    expect(screen.getByRole('img', { name: 'Broken (image unavailable)' })).toBeInTheDocument()
  })

  it('polls, so products appear and disappear without a reload', async () => {
    let products = [makeGalleryProduct({ id: 1, title: 'Old' })]
    serveList(() => products)
    renderGallery(50)
    expect(await screen.findByRole('article', { name: 'Old' })).toBeInTheDocument()

    products = [makeGalleryProduct({ id: 2, title: 'New' })]
    expect(await screen.findByRole('article', { name: 'New' })).toBeInTheDocument()
    expect(screen.queryByRole('article', { name: 'Old' })).not.toBeInTheDocument()
    expect(screen.queryByRole('alert')).not.toBeInTheDocument()
  })

  it('keeps the like it just made when an older poll answers after it', async () => {
    const slowPoll = gate()
    const never = gate()
    let likes = 0
    let calls = 0
    server.use(
      http.get(LIST, async () => {
        calls += 1
        const call = calls
        const body = [makeGalleryProduct({ id: 1, title: 'Desk', likes, liked: likes > 0 })] // the count when the poll started
        if (call === 2) await slowPoll.opened // this poll started before the like settled
        if (call > 2) await never.opened // later polls never answer: only the old one can land
        return HttpResponse.json(body)
      }),
      http.post(LIKE, () => {
        likes = 1
        return HttpResponse.json({ id: 1, likes: 1, liked: true })
      }),
    )
    const { user } = renderGallery(30)
    await screen.findByRole('article', { name: 'Desk' })
    await waitFor(() => expect(calls).toBe(2))

    await user.click(screen.getByRole('button', { name: 'Like Desk' }))
    expect(await within(card('Desk')).findByText('1 like')).toBeInTheDocument()
    await act(async () => {
      slowPoll.open()
      await delay(50)
    })
    expect(within(card('Desk')).getByText('1 like')).toBeInTheDocument()
    expect(within(card('Desk')).getByRole('button', { name: 'Unlike Desk' })).toBeInTheDocument()
    never.open()
  })

  it('keeps the like when a poll that started while it was in flight answers after it', async () => {
    const likeGate = gate()
    const pollGate = gate()
    const never = gate()
    let likes = 0
    let liking = false
    let staleCall = 0
    let calls = 0
    server.use(
      http.get(LIST, async () => {
        calls += 1
        const body = [makeGalleryProduct({ id: 1, title: 'Desk', likes, liked: likes > 0 })]
        if (liking && !staleCall) {
          staleCall = calls // started after the click, before the server counted the like
          await pollGate.opened
        } else if (staleCall) await never.opened
        return HttpResponse.json(body)
      }),
      http.post(LIKE, async () => {
        liking = true
        await likeGate.opened
        likes = 1
        return HttpResponse.json({ id: 1, likes: 1, liked: true })
      }),
    )
    const { user } = renderGallery(30)
    await screen.findByRole('article', { name: 'Desk' })

    await user.click(screen.getByRole('button', { name: 'Like Desk' }))
    await waitFor(() => expect(staleCall).toBeGreaterThan(0))
    await act(async () => {
      likeGate.open()
      await delay(20)
    })
    expect(within(card('Desk')).getByRole('button', { name: 'Unlike Desk' })).toHaveAttribute('aria-busy', 'false')

    pollGate.open()
    await waitFor(() => expect(calls).toBeGreaterThan(staleCall)) // the next poll starts once the old one landed
    expect(within(card('Desk')).getByText('1 like')).toBeInTheDocument()
    expect(within(card('Desk')).getByRole('button', { name: 'Unlike Desk' })).toBeInTheDocument()
    never.open()
  })

  it('ignores a second click while the first is in flight', async () => {
    const release = gate()
    const posts: string[] = []
    serveList([makeGalleryProduct({ id: 6, title: 'Stool', likes: 0 })])
    server.use(
      http.post(LIKE, async ({ params }) => {
        posts.push(String(params.id))
        await release.opened
        return HttpResponse.json({ id: 6, likes: 1, liked: true })
      }),
    )
    const { user } = renderGallery(POLL_OFF)
    await user.click(await screen.findByRole('button', { name: 'Like Stool' }))
    await user.click(within(card('Stool')).getByRole('button', { name: 'Unlike Stool' }))

    expect(within(card('Stool')).getByText('1 like')).toBeInTheDocument()
    release.open()
    await waitFor(() => expect(within(card('Stool')).getByRole('button', { name: 'Unlike Stool' })).toHaveAttribute('aria-busy', 'false'))
    expect(posts).toEqual(['6'])
    expect(within(card('Stool')).getByText('1 like')).toBeInTheDocument()
  })

  it('keeps showing the last products when a background refresh fails', async () => {
    let fail = false
    server.use(
      http.get(LIST, () => (fail ? HttpResponse.error() : HttpResponse.json([makeGalleryProduct({ title: 'Stays' })]))),
    )
    renderGallery(40)
    expect(await screen.findByRole('article', { name: 'Stays' })).toBeInTheDocument()
    fail = true
    expect(await screen.findByText("Couldn't refresh the gallery.")).toBeInTheDocument()
    expect(card('Stays')).toBeInTheDocument()
  })
})
