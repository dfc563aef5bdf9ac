/** The signed-in admin user as /api/auth/me describes it. */
export type User = { username: string; is_staff?: boolean }
