import { setupServer } from 'msw/node'

/** The one MSW server; tests add handlers with server.use(). */
export const server = setupServer()
