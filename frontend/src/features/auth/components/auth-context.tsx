import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react'
import { api, errorMessage } from '@/lib/api-client'
import { getMe } from '../api/get-me'
import { login as apiLogin, type Credentials } from '../api/login'
import { logout as apiLogout } from '../api/logout'
import type { User } from '../api/types'

type AuthState =
  | { status: 'checking'; user: null; error: null }
  | { status: 'authenticated'; user: User; error: null }
  | { status: 'anonymous'; user: null; error: null }
  | { status: 'unknown'; user: null; error: string }

type AuthApi = AuthState & {
  login: (credentials: Credentials) => Promise<void>
  logout: () => Promise<void>
  recheck: () => Promise<void>
}

const AuthContext = createContext<AuthApi | null>(null)

/** Track the admin session: probe /api/auth/me and re-probe when the API refuses us. */
export function AuthProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<AuthState>({ status: 'checking', user: null, error: null })

  const recheck = useCallback(async () => {
    try {
      const user = await getMe()
      setState(user ? { status: 'authenticated', user, error: null } : { status: 'anonymous', user: null, error: null })
    } catch (err) {
      setState({ status: 'unknown', user: null, error: errorMessage(err) })
    }
  }, [])

  useEffect(() => {
    let active = true
    getMe()
      .then((user) => {
        if (!active) return
        setState(user ? { status: 'authenticated', user, error: null } : { status: 'anonymous', user: null, error: null })
      })
      .catch((err: unknown) => {
        if (active) setState({ status: 'unknown', user: null, error: errorMessage(err) })
      })
    // A 401/403 may mean the session expired, or only that this user lacks a permission: ask.
    const unsubscribe = api.onUnauthorized(() => void recheck())
    return () => {
      active = false
      unsubscribe()
    }
  }, [recheck])

  const login = useCallback(async (credentials: Credentials) => {
    await apiLogin(credentials)
    const user = await getMe()
    setState(
      user
        ? { status: 'authenticated', user, error: null }
        : { status: 'authenticated', user: { username: credentials.username }, error: null },
    )
  }, [])

  const logout = useCallback(async () => {
    await apiLogout()
    setState({ status: 'anonymous', user: null, error: null })
  }, [])

  const value = useMemo(() => ({ ...state, login, logout, recheck }), [state, login, logout, recheck])
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>
}

/** Return the session state and actions; must be used under AuthProvider. */
export function useAuth(): AuthApi {
  const ctx = useContext(AuthContext)
  if (!ctx) throw new Error('useAuth must be used inside <AuthProvider>')
  return ctx
}
