import { useId, useState, type FormEvent } from 'react'
import { ApiError, errorMessage } from '@/lib/api-client'
import { useAuth } from './auth-context'

/** Ask for a username and password and sign in; calls onSuccess afterwards. */
export function LoginForm({ onSuccess }: { onSuccess: () => void }) {
  const auth = useAuth()
  const [username, setUsername] = useState('')
  const [password, setPassword] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [submitting, setSubmitting] = useState(false)
  const userId = useId()
  const passId = useId()

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault()
    if (!username.trim() || !password) {
      setError('Enter your username and password.')
      return
    }
    setSubmitting(true)
    setError(null)
    try {
      await auth.login({ username: username.trim(), password })
      onSuccess()
    } catch (err) {
      if (err instanceof ApiError && [400, 401, 403].includes(err.status)) {
        setError(err.detail && !/csrf/i.test(err.detail) ? err.detail : 'Wrong username or password.')
      } else {
        setError(errorMessage(err))
      }
      setSubmitting(false)
    }
  }

  return (
    <form noValidate onSubmit={submit} className="vstack gap-3" aria-busy={submitting}>
      {error && (
        <div className="alert alert-danger mb-0" role="alert">
          {error}
        </div>
      )}
      <div>
        <label htmlFor={userId} className="form-label">
          Username
        </label>
        <input
          id={userId}
          name="username"
          className="form-control"
          autoComplete="username"
          autoCapitalize="none"
          required
          value={username}
          onChange={(e) => setUsername(e.target.value)}
        />
      </div>
      <div>
        <label htmlFor={passId} className="form-label">
          Password
        </label>
        <input
          id={passId}
          name="password"
          type="password"
          className="form-control"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
      </div>
      <button type="submit" className="btn btn-primary" disabled={submitting}>
        {submitting ? 'Signing in…' : 'Sign in'}
      </button>
    </form>
  )
}
