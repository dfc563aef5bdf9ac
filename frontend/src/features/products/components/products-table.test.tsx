import { screen, waitFor, within } from '@testing-library/react'
import { http, HttpResponse } from 'msw'
import { server } from '@/testing/mocks/server'
import { ORIGIN, createAdminBackend, makeProduct } from '@/testing/mocks/backend'
import { renderApp } from '@/testing/test-utils'

function setup() {
  const backend = createAdminBackend({
    signedIn: true,
    products: [
      makeProduct({ id: 1, title: 'Red mug', likes: 3, image: 'https://img.example.com/red.jpg' }),
      makeProduct({ id: 2, title: 'Blue cup', likes: 0 }),
    ],
  })
  server.use(...backend.handlers)
  return backend
}

function row(title: string) {
  return screen.getByRole('cell', { name: title }).closest('tr') as HTMLElement
}

describe('admin products table', () => {
  it('lists products with image preview, title, likes and actions', async () => {
    setup()
    renderApp('/admin/products')
    const table = await screen.findByRole('table', { name: 'Products' })
    expect(within(table).getAllByRole('row')).toHaveLength(3)
    const red = row('Red mug')
    expect(within(red).getByRole('img', { name: 'Preview of Red mug' })).toHaveAttribute('src', 'https://img.example.com/red.jpg')
    expect(within(red).getByRole('cell', { name: '3' })).toBeInTheDocument()
    expect(within(red).getByRole('link', { name: 'Edit Red mug' })).toHaveAttribute('href', '/admin/products/1/edit')
    expect(within(red).getByRole('button', { name: 'Delete Red mug' })).toBeInTheDocument()
  })

  it('deletes only after confirmation, then says so', async () => {
    const backend = setup()
    const { user } = renderApp('/admin/products')
    await user.click(await screen.findByRole('button', { name: 'Delete Red mug' }))

    const dialog = screen.getByRole('alertdialog', { name: 'Delete product?' })
    expect(dialog).toHaveTextContent('“Red mug” will be removed')
    expect(within(dialog).getByRole('button', { name: 'Cancel' })).toHaveFocus()
    await user.click(within(dialog).getByRole('button', { name: 'Delete' }))

    expect(await screen.findByText('Deleted “Red mug”.')).toBeInTheDocument()
    expect(screen.queryByRole('cell', { name: 'Red mug' })).not.toBeInTheDocument()
    expect(screen.queryByRole('alertdialog')).not.toBeInTheDocument()
    const deletes = backend.state.requests.filter((r) => r.method === 'DELETE')
    expect(deletes.map((r) => [r.path, r.headers.get('X-CSRFToken')])).toEqual([['/api/products/1', 'test-csrf-token']])
  })

  it('does nothing when the confirmation is cancelled with Escape', async () => {
    const backend = setup()
    const { user } = renderApp('/admin/products')
    const deleteButton = await screen.findByRole('button', { name: 'Delete Blue cup' })
    await user.click(deleteButton)
    await user.keyboard('{Escape}')

    expect(screen.queryByRole('alertdialog')).not.toBeInTheDocument()
    expect(deleteButton).toHaveFocus()
    expect(row('Blue cup')).toBeInTheDocument()
    expect(backend.state.requests.some((r) => r.method === 'DELETE')).toBe(false)
  })

  it('reports a failed delete and keeps the row', async () => {
    setup()
    const { user } = renderApp('/admin/products')
    await user.click(await screen.findByRole('button', { name: 'Delete Blue cup' }))
    server.use(http.delete(`${ORIGIN}/api/products/:id`, () => HttpResponse.json({ detail: 'Database is read-only' }, { status: 500 })))
    await user.click(screen.getByRole('button', { name: 'Delete' }))
    expect(await screen.findByRole('alert')).toHaveTextContent('Couldn\'t delete “Blue cup”: Database is read-only')
    expect(row('Blue cup')).toBeInTheDocument()
  })

  it('shows an empty state with a link to create a product', async () => {
    server.use(...createAdminBackend({ signedIn: true }).handlers)
    renderApp('/admin/products')
    expect(await screen.findByText('No products yet.')).toBeInTheDocument()
    expect(screen.getByRole('link', { name: 'Create the first one' })).toHaveAttribute('href', '/admin/products/create')
  })
})

describe('admin product form', () => {
  it('checks input before sending anything', async () => {
    const backend = setup()
    const { user } = renderApp('/admin/products/create')
    const title = await screen.findByLabelText('Title')
    await user.type(screen.getByLabelText('Image URL'), 'not-a-url')
    await user.click(screen.getByRole('button', { name: 'Create product' }))

    expect(title).toHaveAttribute('aria-invalid', 'true')
    expect(title).toHaveAccessibleDescription(/Title is required\./)
    expect(title).toHaveFocus()
    expect(screen.getByLabelText('Image URL')).toHaveAccessibleDescription(/Enter a full http:\/\/ or https:\/\/ URL\./)
    expect(backend.state.requests.some((r) => r.method === 'POST')).toBe(false)
  })

  it('shows the server\'s field errors next to the fields', async () => {
    const backend = setup()
    server.use(
      http.post(`${ORIGIN}/api/products`, () =>
        HttpResponse.json(
          {
            error: 'validation_error',
            detail: 'title: product with this title already exists.',
            fields: { title: ['product with this title already exists.'], image: ['Enter a valid URL.'] },
          },
          { status: 400 },
        ),
      ),
    )
    const { user } = renderApp('/admin/products/create')
    await user.type(await screen.findByLabelText('Title'), 'Red mug')
    await user.type(screen.getByLabelText('Image URL'), 'https://img.example.com/x.jpg')
    await user.click(screen.getByRole('button', { name: 'Create product' }))

    expect(await screen.findByText('product with this title already exists.')).toBeInTheDocument()
    expect(screen.getByLabelText('Title')).toHaveAttribute('aria-invalid', 'true')
    expect(screen.getByLabelText('Image URL')).toHaveAccessibleDescription(/Enter a valid URL\./)
    expect(backend.state.products).toHaveLength(2)
    // The summary repeats a field message, so it is not shown a second time as a form alert.
    expect(screen.queryByRole('alert')).not.toBeInTheDocument()
  })

  it('shows the server\'s DRF-style field errors and other messages', async () => {
    setup()
    server.use(
      http.put(`${ORIGIN}/api/products/1`, () =>
        HttpResponse.json({ image: ['Enter a valid URL.'], tags: ['Unknown field.'] }, { status: 400 }),
      ),
    )
    const { user } = renderApp('/admin/products/1/edit')
    await user.click(await screen.findByRole('button', { name: 'Save changes' }))

    expect(await screen.findByRole('alert')).toHaveTextContent('tags: Unknown field.')
    expect(screen.getByLabelText('Image URL')).toHaveAccessibleDescription(/Enter a valid URL\./)
    expect(screen.getByLabelText('Image URL')).toHaveFocus()
  })

  it('creates a product, returns to the list and confirms', async () => {
    const backend = setup()
    const { user, router } = renderApp('/admin/products/create')
    await user.type(await screen.findByLabelText('Title'), '  Green bowl ')
    await user.type(screen.getByLabelText('Image URL'), 'https://img.example.com/green.jpg')
    await user.click(screen.getByRole('button', { name: 'Create product' }))

    expect(await screen.findByText('Created “Green bowl”.')).toBeInTheDocument()
    await waitFor(() => expect(router.state.location.pathname).toBe('/admin/products'))
    expect(await screen.findByRole('cell', { name: 'Green bowl' })).toBeInTheDocument()
    const post = backend.state.requests.find((r) => r.method === 'POST' && r.path === '/api/products')
    expect(post?.body).toEqual({ title: 'Green bowl', image: 'https://img.example.com/green.jpg' })
  })

  it('edits a product with PUT (202) and shows the new title', async () => {
    const backend = setup()
    const { user } = renderApp('/admin/products/2/edit')
    const title = await screen.findByLabelText('Title')
    expect(title).toHaveValue('Blue cup')
    await user.clear(title)
    await user.type(title, 'Navy cup')
    await user.click(screen.getByRole('button', { name: 'Save changes' }))

    expect(await screen.findByText(/Saved “Navy cup”/)).toBeInTheDocument()
    expect(await screen.findByRole('cell', { name: 'Navy cup' })).toBeInTheDocument()
    expect(backend.state.requests.filter((r) => r.method === 'PUT').map((r) => r.path)).toEqual(['/api/products/2'])
  })

  it('says so when the product to edit does not exist', async () => {
    setup()
    renderApp('/admin/products/99/edit')
    expect(await screen.findByText('This product does not exist.')).toBeInTheDocument()
  })
})
