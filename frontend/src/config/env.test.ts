import { ConfigError, createEnv } from './env'

describe('createEnv', () => {
  it('defaults to same-origin APIs and a few seconds of polling', () => {
    expect(createEnv({})).toEqual({ ADMIN_API_URL: '', MAIN_API_URL: '', GALLERY_POLL_MS: 4000 })
  })

  it('accepts absolute http(s) origins and drops a trailing slash', () => {
    const env = createEnv({ VITE_ADMIN_API_URL: 'https://admin.example.com/', VITE_MAIN_API_URL: 'http://127.0.0.1:5000', VITE_GALLERY_POLL_MS: '2500' })
    expect(env).toEqual({ ADMIN_API_URL: 'https://admin.example.com', MAIN_API_URL: 'http://127.0.0.1:5000', GALLERY_POLL_MS: 2500 })
  })

  it('lists every problem at once', () => {
    let error: unknown
    try {
      createEnv({ VITE_ADMIN_API_URL: 'admin:8000', VITE_MAIN_API_URL: 'ftp://x', VITE_GALLERY_POLL_MS: 'soon' })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).problems).toHaveLength(3)
    expect((error as ConfigError).message).toMatch(/VITE_ADMIN_API_URL.*\n.*VITE_MAIN_API_URL.*\n.*VITE_GALLERY_POLL_MS/)
  })
})
