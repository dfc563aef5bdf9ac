import type { ReactNode } from 'react'
import { ToastProvider } from '@/components/ui/toast-context'

/** Wrap the app in the providers every page needs. */
export function AppProvider({ children }: { children: ReactNode }) {
  return <ToastProvider>{children}</ToastProvider>
}
