/// <reference types="vitest/config" />
import { fileURLToPath, URL } from 'node:url'
import react from '@vitejs/plugin-react'
import { defineConfig, type ProxyOptions } from 'vite'

/** Build the proxy table shared by `vite` (dev) and `vite preview` (make run). */
export function proxyRules(env: NodeJS.ProcessEnv = process.env): Record<string, ProxyOptions> {
  const admin = env.ADMIN_ORIGIN || 'http://127.0.0.1:8000'
  const main = env.MAIN_ORIGIN || 'http://127.0.0.1:5000'
  // changeOrigin stays false: Django's CSRF check compares the browser's Origin with the
  // Host header, so the Host the browser sent must reach Django unchanged.
  const to = (target: string): ProxyOptions => ({ target, changeOrigin: false, xfwd: true })
  return {
    // Keys starting with ^ are regular expressions; the (/|$) stops /apiary or /flasks matching.
    '^/(api|django-admin|static)(/|$)': to(admin),
    '^/flask(/|$)': to(main),
  }
}

export default defineConfig({
  plugins: [react()],
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  server: { proxy: proxyRules() },
  preview: { proxy: proxyRules() },
  build: { sourcemap: false, chunkSizeWarningLimit: 400 },
  test: {
    globals: true,
    environment: 'jsdom',
    setupFiles: ['./src/testing/setup-tests.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
    restoreMocks: true,
    pool: 'threads',
    maxWorkers: 2,
    // The machine is shared; typing with user-event can be slow under load.
    testTimeout: 20_000,
    // `npx vitest run --coverage` (make coverage): fails under 80 % of lines/statements.
    coverage: {
      provider: 'v8',
      include: ['src/**/*.{ts,tsx}'],
      exclude: ['src/**/*.test.{ts,tsx}', 'src/testing/**', 'src/main.tsx', 'src/**/*.d.ts'],
      reporter: ['text-summary', 'text', 'cobertura'],
      reportsDirectory: './coverage',
      thresholds: { lines: 80, statements: 80 },
    },
  },
})
