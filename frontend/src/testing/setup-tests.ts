import '@testing-library/jest-dom/vitest'
import { cleanup, configure } from '@testing-library/react'
import { afterAll, afterEach, beforeAll } from 'vitest'
import { server } from './mocks/server'

// The machine is shared by several people; give findBy* queries room under load.
configure({ asyncUtilTimeout: 5000 })

// Every request a test makes must be one it declared: an unexpected call is a failing test.
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterEach(() => {
  cleanup()
  server.resetHandlers()
  // Unsaved-form drafts live in sessionStorage: no test sees another's.
  sessionStorage.clear()
  // Cookies live on the shared jsdom document; start each test without any.
  for (const part of document.cookie.split(';')) {
    const name = part.split('=')[0]?.trim()
    if (name) document.cookie = `${name}=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/`
  }
})
afterAll(() => server.close())
