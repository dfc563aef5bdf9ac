import { screen, waitFor } from '@testing-library/react'
import { server } from '@/testing/mocks/server'
import { createAdminBackend, makeProduct } from '@/testing/mocks/backend'
import { renderApp } from '@/testing/test-utils'

describe('admin sign-in', () => {
  it('sends an anonymous visitor to /login and back to the page they wanted', async () => {
    const backend = createAdminBackend({ products: [makeProduct({ id: 4, title: 'Teapot' })] })
    server.use(...backend.handlers)
    const { user, router } = renderApp('/admin/products/4/edit')

    expect(await screen.findByRole('heading', { name: 'Sign in' })).toBeInTheDocument()
    expect(router.state.location.pathname).toBe('/login')

    await user.type(screen.getByLabelText('Username'), 'admin')
    await user.type(screen.getByLabelText('Password'), 'secret')
    await user.click(screen.getByRole('button', { name: 'Sign in' }))

    expect(await screen.findByLabelText('Title')).toHaveValue('Teapot')
    expect(router.state.location.pathname).toBe('/admin/products/4/edit')
    const calls = backend.state.requests.map((r) => `${r.method} ${r.path}`)
    expect(calls.indexOf('GET /api/auth/csrf')).toBeLessThan(calls.indexOf('POST /api/auth/login'))
    const login = backend.state.requests.find((r) => r.path === '/api/auth/login')
    expect(login?.body).toEqual({ username: 'admin', password: 'secret' })
    expect(login?.headers.get('X-CSRFToken')).toBe('test-csrf-token')
  })

  it('says when the credentials are wrong and stays on the form', async () => {
    server.use(...createAdminBackend().handlers)
    const { user, router } = renderApp('/login')
    await user.type(await screen.findByLabelText('Username'), 'admin')
    await user.type(screen.getByLabelText('Password'), 'wrong')
    await user.click(screen.getByRole('button', { name: 'Sign in' }))

    expect(await screen.findByRole('alert')).toHaveTextContent('Invalid username or password, or the user is not staff.')
    expect(router.state.location.pathname).toBe('/login')
  })

  it('signs out and returns to the sign-in page', async () => {
    const backend = createAdminBackend({ signedIn: true })
    server.use(...backend.handlers)
    const { user, router } = renderApp('/admin/products')
    expect(await screen.findByText('admin')).toBeInTheDocument()
    await user.click(screen.getByRole('button', { name: 'Sign out' }))

    await waitFor(() => expect(router.state.location.pathname).toBe('/login'))
    expect(backend.state.signedIn).toBe(false)
    expect(backend.state.requests.some((r) => r.method === 'POST' && r.path === '/api/auth/logout')).toBe(true)
  })

  it('goes to the sign-in page when the session ends while using the admin', async () => {
    const backend = createAdminBackend({ signedIn: true, products: [makeProduct({ title: 'Clock' })] })
    server.use(...backend.handlers)
    const { user, router } = renderApp('/admin/products')
    await screen.findByRole('cell', { name: 'Clock' })
    backend.state.signedIn = false // e.g. the session expired on the server
    await user.click(screen.getByRole('button', { name: 'Delete Clock' }))
    await user.click(screen.getByRole('button', { name: 'Delete' }))

    await waitFor(() => expect(router.state.location.pathname).toBe('/login'))
  })
})
