import { render } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import type { ReactElement } from 'react'
import { createMemoryRouter, RouterProvider } from 'react-router'
import { AppProvider, createQueryClient } from '@/app/provider'
import { routes } from '@/app/router'

/** Render the real route table at `path`, as a user arriving there would see it. */
export function renderApp(path: string) {
  const router = createMemoryRouter(routes, { initialEntries: [path] })
  const user = userEvent.setup()
  const utils = render(
    <AppProvider client={createQueryClient({ retryDelay: 0 })}>
      <RouterProvider router={router} />
    </AppProvider>,
  )
  return { ...utils, user, router }
}

/** Render one component inside the app-wide providers. */
export function renderWithProviders(ui: ReactElement) {
  const user = userEvent.setup()
  return { ...render(<AppProvider client={createQueryClient({ retryDelay: 0 })}>{ui}</AppProvider>), user }
}
