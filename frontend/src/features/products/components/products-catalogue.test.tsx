import { fireEvent, screen, waitFor, within } from '@testing-library/react'
import { server } from '@/testing/mocks/server'
import { createAdminBackend, makeProduct } from '@/testing/mocks/backend'
import { renderApp } from '@/testing/test-utils'

/** 60 products; a higher id is newer (created one minute later). */
function setup(count = 60) {
  const products = Array.from({ length: count }, (_, i) =>
    makeProduct({
      id: i + 1,
      title: `Product ${i + 1}`,
      likes: (i * 7) % 13,
      created_at: new Date(Date.UTC(2026, 10, 1, 0, i)).toISOString(),
    }),
  )
  const backend = createAdminBackend({ signedIn: true, products })
  server.use(...backend.handlers)
  return backend
}

function titles(): string[] {
  const table = screen.getByRole('table', { name: 'Products' })
  return within(table)
    .getAllByRole('row')
    .slice(1)
    .map((row) => within(row).getAllByRole('cell')[2].textContent ?? '')
}

function listRequests(backend: ReturnType<typeof setup>) {
  return backend.state.requests.filter((r) => r.method === 'GET' && r.path === '/api/products').map((r) => r.search)
}

describe('admin catalogue: search, sort, pages, in the URL', () => {
  it('shows the newest first, 25 a page, with the total', async () => {
    const backend = setup()
    renderApp('/admin/products')
    await screen.findByRole('table', { name: 'Products' })
    expect(titles()).toHaveLength(25)
    expect(titles()[0]).toBe('Product 60')
    expect(screen.getByTestId('list-summary')).toHaveTextContent('1–25 of 60 products.')
    expect(listRequests(backend)[0]).toBe('?ordering=-created&limit=25&offset=0')
    expect(screen.getByRole('columnheader', { name: /Created/ })).toHaveAttribute('aria-sort', 'descending')
  })

  it('pages through links that the back button undoes', async () => {
    setup()
    const { user, router } = renderApp('/admin/products')
    await screen.findByRole('table', { name: 'Products' })
    await user.click(screen.getByRole('link', { name: 'Next page' }))
    await waitFor(() => expect(titles()[0]).toBe('Product 35'))
    expect(router.state.location.search).toBe('?page=2')
    expect(screen.getByTestId('list-summary')).toHaveTextContent('26–50 of 60 products.')
    await user.click(screen.getByRole('link', { name: 'Page 3' }))
    await waitFor(() => expect(titles()).toEqual(Array.from({ length: 10 }, (_, i) => `Product ${10 - i}`)))

    await router.navigate(-1)
    await waitFor(() => expect(titles()[0]).toBe('Product 35'))
    await router.navigate(-1)
    await waitFor(() => expect(titles()[0]).toBe('Product 60'))
    expect(router.state.location.search).toBe('')
  })

  it('searches once typing stops, replacing the history entry rather than adding one per key', async () => {
    const backend = setup()
    const { user, router } = renderApp('/admin/products?page=2')
    await screen.findByRole('table', { name: 'Products' })
    await user.type(screen.getByRole('searchbox', { name: 'Search products' }), 'product 1')
    await waitFor(() => expect(router.state.location.search).toBe('?q=product+1'))
    expect(router.state.historyAction).toBe('REPLACE')
    await waitFor(() => expect(titles()).toHaveLength(11)) // 1 and 10..19
    expect(screen.getByTestId('list-summary')).toHaveTextContent('11 products match “product 1”.')
    // One request for the finished word, none per keystroke.
    expect(listRequests(backend).filter((s) => s.includes('search='))).toEqual([
      '?ordering=-created&limit=25&offset=0&search=product+1',
    ])
  })

  it('says when nothing matches and clears the search', async () => {
    setup()
    const { user, router } = renderApp('/admin/products?q=teapot')
    expect(await screen.findByText('No products match “teapot”.')).toBeInTheDocument()
    expect(screen.getByRole('searchbox', { name: 'Search products' })).toHaveValue('teapot')
    await user.click(screen.getByRole('button', { name: 'Clear the search' }))
    await screen.findByRole('table', { name: 'Products' })
    expect(router.state.location.search).toBe('')
    expect(screen.getByRole('searchbox', { name: 'Search products' })).toHaveValue('')
  })

  it('sorts by a column header and toggles its direction', async () => {
    const backend = setup(12)
    const { user, router } = renderApp('/admin/products')
    await screen.findByRole('table', { name: 'Products' })
    await user.click(screen.getByRole('button', { name: /^Title/ }))
    await waitFor(() => expect(router.state.location.search).toBe('?ordering=title'))
    expect(screen.getByRole('columnheader', { name: /Title/ })).toHaveAttribute('aria-sort', 'ascending')
    await waitFor(() => expect(titles().slice(0, 3)).toEqual(['Product 1', 'Product 10', 'Product 11']))
    await user.click(screen.getByRole('button', { name: /^Title/ }))
    await waitFor(() => expect(router.state.location.search).toBe('?ordering=-title'))
    await waitFor(() => expect(titles()[0]).toBe('Product 9'))
    await user.click(screen.getByRole('button', { name: /^Likes/ }))
    await waitFor(() => expect(router.state.location.search).toBe('?ordering=-likes'))
    expect(listRequests(backend).at(-1)).toBe('?ordering=-likes&limit=25&offset=0')
  })

  it('opens at the state a shared link holds, and changes page size', async () => {
    const backend = setup()
    const { user, router } = renderApp('/admin/products?ordering=id&page=2&size=10')
    await screen.findByRole('table', { name: 'Products' })
    expect(titles()[0]).toBe('Product 11')
    expect(listRequests(backend)[0]).toBe('?ordering=id&limit=10&offset=10')
    await user.selectOptions(screen.getByLabelText('Rows per page'), '50')
    await waitFor(() => expect(titles()).toHaveLength(50))
    expect(router.state.location.search).toBe('?ordering=id&size=50')
  })

  it('ignores parameters it does not know instead of failing', async () => {
    const backend = setup()
    renderApp('/admin/products?ordering=price&page=-3&size=7')
    await screen.findByRole('table', { name: 'Products' })
    expect(listRequests(backend)[0]).toBe('?ordering=-created&limit=25&offset=0')
  })

  it('puts a new product first and highlights it', async () => {
    setup()
    const { user } = renderApp('/admin/products?ordering=title&page=2')
    await screen.findByRole('table', { name: 'Products' })
    await user.click(screen.getByRole('link', { name: 'New product' }))
    await user.type(await screen.findByLabelText('Title'), 'Green bowl')
    await user.type(screen.getByLabelText('Image URL'), 'https://img.example.com/green.jpg')
    await user.click(screen.getByRole('button', { name: 'Create product' }))
    await waitFor(() => expect(titles()[0]).toBe('Green bowl'))
    const row = screen.getByRole('cell', { name: 'Green bowl' }).closest('tr')
    expect(row).toHaveAttribute('data-highlighted', 'true')
    expect(row).toHaveClass('table-success')
    expect(screen.getAllByRole('row').filter((r) => r.dataset.highlighted)).toHaveLength(1)
  })

  it('returns from an edit to the same page of the list, the row highlighted', async () => {
    setup()
    const { user, router } = renderApp('/admin/products?page=2')
    await screen.findByRole('table', { name: 'Products' })
    await user.click(await screen.findByRole('link', { name: 'Edit Product 30' }))
    const title = await screen.findByLabelText('Title')
    await user.clear(title)
    await user.type(title, 'Product 30 renamed')
    await user.click(screen.getByRole('button', { name: 'Save changes' }))
    await waitFor(() => expect(router.state.location.search).toBe('?page=2'))
    const row = (await screen.findByRole('cell', { name: 'Product 30 renamed' })).closest('tr')
    expect(row).toHaveAttribute('data-highlighted', 'true')
  })

  it('truncates a long title on screen but keeps it whole for hover and screen readers', async () => {
    const long = 'A very long product title '.repeat(7).trim()
    server.use(...createAdminBackend({ signedIn: true, products: [makeProduct({ id: 1, title: long })] }).handlers)
    renderApp('/admin/products')
    const cell = await screen.findByRole('cell', { name: long })
    const text = within(cell).getByText(long)
    expect(text).toHaveClass('text-truncate-2')
    expect(text).toHaveAttribute('title', long)
    expect(screen.getByRole('link', { name: `Edit ${long}` })).toBeInTheDocument()
  })
})

describe('admin product form: drafts and the unsaved-changes guard', () => {
  it('keeps the form through an expired session and returns to it after sign-in', async () => {
    const backend = setup(3)
    const { user, router } = renderApp('/admin/products/2/edit')
    const title = await screen.findByLabelText('Title')
    await user.clear(title)
    await user.type(title, 'Navy cup')
    backend.state.signedIn = false // the session expires while the admin types
    await user.click(screen.getByRole('button', { name: 'Save changes' }))

    await waitFor(() => expect(router.state.location.pathname).toBe('/login'))
    // The route's code may still be loading (a lazy chunk): wait for the page, not only the URL.
    expect(await screen.findByText(/Your session ended\. Sign in again to go back to your form/)).toBeInTheDocument()
    await user.type(screen.getByLabelText('Username'), 'admin')
    await user.type(screen.getByLabelText('Password'), 'secret')
    await user.click(screen.getByRole('button', { name: 'Sign in' }))

    await waitFor(() => expect(router.state.location.pathname).toBe('/admin/products/2/edit'))
    expect(await screen.findByLabelText('Title')).toHaveValue('Navy cup')
    expect(screen.getByText('Your unsaved changes were restored.')).toBeInTheDocument()
    await user.click(screen.getByRole('button', { name: 'Save changes' }))
    expect(await screen.findByText(/Saved “Navy cup”/)).toBeInTheDocument()
    expect(backend.state.products.find((p) => p.id === 2)?.title).toBe('Navy cup')
    expect(sessionStorage.length).toBe(0)
  })

  it('offers to discard a restored draft', async () => {
    setup(3)
    sessionStorage.setItem('product-draft:/admin/products/1/edit', JSON.stringify({ title: 'Half-typed', image: 'https://x.example/a.jpg' }))
    const { user } = renderApp('/admin/products/1/edit')
    expect(await screen.findByLabelText('Title')).toHaveValue('Half-typed')
    await user.click(screen.getByRole('button', { name: 'Discard them' }))
    expect(screen.getByLabelText('Title')).toHaveValue('Product 1')
    expect(sessionStorage.length).toBe(0)
  })

  it('asks before leaving a form with unsaved changes', async () => {
    setup(3)
    const { user, router } = renderApp('/admin/products/create')
    await user.type(await screen.findByLabelText('Title'), 'Unsaved')
    await user.click(screen.getByRole('link', { name: 'Cancel' }))
    const dialog = screen.getByRole('alertdialog', { name: 'Leave without saving?' })
    await user.click(within(dialog).getByRole('button', { name: 'Cancel' }))
    expect(router.state.location.pathname).toBe('/admin/products/create')
    expect(screen.getByLabelText('Title')).toHaveValue('Unsaved')

    await user.click(screen.getByRole('link', { name: 'Products' }))
    await user.click(within(screen.getByRole('alertdialog')).getByRole('button', { name: 'Leave' }))
    await waitFor(() => expect(router.state.location.pathname).toBe('/admin/products'))
    expect(sessionStorage.length).toBe(0)
  })

  it('leaves an untouched form without asking', async () => {
    setup(3)
    const { user, router } = renderApp('/admin/products/1/edit')
    await screen.findByLabelText('Title')
    await user.click(screen.getByRole('link', { name: 'Cancel' }))
    await waitFor(() => expect(router.state.location.pathname).toBe('/admin/products'))
    expect(screen.queryByRole('alertdialog')).not.toBeInTheDocument()
  })

  it('warns, without blocking, when the image URL does not answer with an image', async () => {
    const backend = setup(3)
    const { user } = renderApp('/admin/products/create')
    await user.type(await screen.findByLabelText('Title'), 'Broken picture')
    await user.type(screen.getByLabelText('Image URL'), 'https://img.example.com/missing.jpg')
    expect(screen.queryByTestId('image-warning')).not.toBeInTheDocument()
    fireEvent.error(screen.getByRole('img', { name: 'Preview' }))
    expect(await screen.findByTestId('image-warning')).toHaveTextContent('did not answer with an image. You can still save it')
    await user.click(screen.getByRole('button', { name: 'Create product' }))
    expect(await screen.findByText('Created “Broken picture”.')).toBeInTheDocument()
    expect(backend.state.products.at(-1)?.image).toBe('https://img.example.com/missing.jpg')
  })

  it('shows no warning once the image loads', async () => {
    setup(3)
    const { user } = renderApp('/admin/products/create')
    await user.type(await screen.findByLabelText('Image URL'), 'https://img.example.com/fine.jpg')
    fireEvent.load(screen.getByRole('img', { name: 'Preview' }))
    expect(screen.queryByTestId('image-warning')).not.toBeInTheDocument()
  })
})
