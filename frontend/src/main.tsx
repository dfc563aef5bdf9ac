import 'bootstrap/dist/css/bootstrap.min.css'
import './index.css'
import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'

const container = document.getElementById('root')!

// Configuration is validated when the app module loads; a bad build says so on the page.
import('./app')
  .then(({ App }) => {
    createRoot(container).render(
      <StrictMode>
        <App />
      </StrictMode>,
    )
  })
  .catch((err: unknown) => {
    const pre = document.createElement('pre')
    pre.className = 'alert alert-danger m-3'
    pre.setAttribute('role', 'alert')
    pre.textContent = err instanceof Error ? err.message : String(err)
    container.replaceChildren(pre)
    throw err
  })
