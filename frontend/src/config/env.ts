/**
 * Runtime configuration, validated once at start so a bad build fails loudly
 * instead of sending requests to the wrong place.
 *
 * VITE_ADMIN_API_URL / VITE_MAIN_API_URL: origin of the admin (Django) and main (Flask)
 * services. Empty (the default) means same origin, served through the proxy.
 * VITE_GALLERY_POLL_MS: how often the gallery refreshes, in milliseconds.
 */
export type Env = {
  ADMIN_API_URL: string
  MAIN_API_URL: string
  GALLERY_POLL_MS: number
}

type RawEnv = Record<string, string | boolean | undefined>

export class ConfigError extends Error {
  readonly problems: string[]

  constructor(problems: string[]) {
    super(`Invalid configuration:\n- ${problems.join('\n- ')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

function parseOrigin(name: string, value: unknown, problems: string[]): string {
  if (value === undefined || value === '') return ''
  if (typeof value !== 'string') {
    problems.push(`${name} must be a string`)
    return ''
  }
  try {
    const url = new URL(value)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      problems.push(`${name} must be an http(s) URL, got "${value}"`)
      return ''
    }
  } catch {
    problems.push(`${name} must be an absolute URL or empty, got "${value}"`)
    return ''
  }
  // Paths are joined as `${base}/api/...`, so a trailing slash would double up.
  return value.replace(/\/+$/, '')
}

function parseInterval(name: string, value: unknown, fallback: number, problems: string[]): number {
  if (value === undefined || value === '') return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 500 || n > 600_000) {
    problems.push(`${name} must be an integer between 500 and 600000, got "${String(value)}"`)
    return fallback
  }
  return n
}

/** Validate raw Vite env variables and return the typed configuration. */
export function createEnv(raw: RawEnv): Env {
  const problems: string[] = []
  const env: Env = {
    ADMIN_API_URL: parseOrigin('VITE_ADMIN_API_URL', raw.VITE_ADMIN_API_URL, problems),
    MAIN_API_URL: parseOrigin('VITE_MAIN_API_URL', raw.VITE_MAIN_API_URL, problems),
    GALLERY_POLL_MS: parseInterval('VITE_GALLERY_POLL_MS', raw.VITE_GALLERY_POLL_MS, 4000, problems),
  }
  if (problems.length) throw new ConfigError(problems)
  return env
}

export const env: Env = createEnv(import.meta.env)
