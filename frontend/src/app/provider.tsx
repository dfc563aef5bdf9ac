import { QueryClient, QueryClientProvider, type DefaultOptions } from '@tanstack/react-query'
import { useState, type ReactNode } from 'react'
import { ToastProvider } from '@/components/ui/toast-context'
import { ApiError } from '@/lib/api-client'

/** A 4xx is the request's fault: asking again gives the same answer. Anything else gets two more tries. */
function retry(failures: number, error: unknown): boolean {
  if (error instanceof ApiError && error.status >= 400 && error.status < 500) return false
  return failures < 2
}

/** Create the query cache every list shares (one per app, one per test). */
export function createQueryClient(queries: DefaultOptions['queries'] = {}): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: { retry, refetchOnWindowFocus: true, staleTime: 1_000, ...queries },
      mutations: { retry: false },
    },
  })
}

/** Wrap the app in the providers every page needs. */
export function AppProvider({ children, client }: { children: ReactNode; client?: QueryClient }) {
  const [queryClient] = useState(() => client ?? createQueryClient())
  return (
    <QueryClientProvider client={queryClient}>
      <ToastProvider>{children}</ToastProvider>
    </QueryClientProvider>
  )
}
