import { useEffect, useId, useRef, useState, type FormEvent } from 'react'
import { Link, useBlocker, useLocation } from 'react-router'
import { ConfirmDialog } from '@/components/ui/confirm-dialog'
import { ProductImage } from '@/components/ui/product-image'
import { ApiError, errorMessage } from '@/lib/api-client'
import type { ProductInput } from '../api/types'
import { IMAGE_MAX, TITLE_MAX, normaliseProductInput, validateProductInput } from '../api/validation'
import { clearDraft, loadDraft, saveDraft } from '../hooks/use-draft'

type Props = {
  initial?: ProductInput
  submitLabel: string
  /** Save the product; throw ApiError to show the server's field errors. */
  onSubmit: (input: ProductInput) => Promise<void>
  /** Where Cancel goes (the list the admin came from). */
  cancelTo?: string
}

type Errors = { title?: string; image?: string; form?: string }

const same = (a: ProductInput, b: ProductInput) => a.title === b.title && a.image === b.image

/**
 * Edit a product's title and image with client checks and the server's field errors. Unsaved
 * values survive an expired session (a draft per page) and leaving asks first.
 */
export function ProductForm({ initial = { title: '', image: '' }, submitLabel, onSubmit, cancelTo = '/admin/products' }: Props) {
  const draftKey = useLocation().pathname
  // A draft left by an expired session (or a reload) comes back once, when the form mounts.
  const [draft] = useState(() => loadDraft(draftKey))
  const [restored, setRestored] = useState(draft !== null && !same(draft, initial))
  const [values, setValues] = useState<ProductInput>(restored && draft ? draft : initial)
  const [errors, setErrors] = useState<Errors>({})
  const [submitting, setSubmitting] = useState(false)
  const [imageCheck, setImageCheck] = useState<{ url: string; loaded: boolean } | null>(null)
  const leaving = useRef(false)
  const titleRef = useRef<HTMLInputElement>(null)
  const imageRef = useRef<HTMLInputElement>(null)
  const ids = { title: useId(), image: useId() }
  const dirty = !same(values, initial)

  // Keep the draft in step with the form: written while it differs from what is saved.
  useEffect(() => {
    if (leaving.current) return
    if (dirty) saveDraft(draftKey, values)
    else clearDraft(draftKey)
  }, [dirty, draftKey, values])

  // Leaving inside the app asks first; /login (an expired session) is let through: the draft waits.
  const blocker = useBlocker(
    ({ currentLocation, nextLocation }) =>
      dirty && !leaving.current && nextLocation.pathname !== currentLocation.pathname && nextLocation.pathname !== '/login',
  )
  // Closing or reloading the tab asks the browser's own question.
  useEffect(() => {
    if (!dirty) return
    const warn = (event: BeforeUnloadEvent) => {
      event.preventDefault()
    }
    window.addEventListener('beforeunload', warn)
    return () => window.removeEventListener('beforeunload', warn)
  }, [dirty])

  function change(field: keyof ProductInput, value: string) {
    setValues((v) => ({ ...v, [field]: value }))
    // Clear a field's error as soon as it is edited; it is re-checked on submit.
    if (errors[field]) setErrors((e) => ({ ...e, [field]: undefined }))
  }

  function discardDraft() {
    clearDraft(draftKey)
    setValues(initial)
    setRestored(false)
  }

  function focusFirstError(e: Errors) {
    if (e.title) titleRef.current?.focus()
    else if (e.image) imageRef.current?.focus()
  }

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault()
    const clientErrors = validateProductInput(values)
    if (clientErrors.title || clientErrors.image) {
      setErrors(clientErrors)
      focusFirstError(clientErrors)
      return
    }
    setSubmitting(true)
    setErrors({})
    leaving.current = true
    try {
      await onSubmit(normaliseProductInput(values))
      clearDraft(draftKey)
    } catch (err) {
      leaving.current = false
      const next: Errors = {}
      if (err instanceof ApiError && err.status === 400) {
        const { title, image, ...rest } = err.fieldErrors
        if (title) next.title = title.join(' ')
        if (image) next.image = image.join(' ')
        const other = Object.entries(rest).map(([field, msgs]) => `${field}: ${msgs.join(' ')}`)
        // The summary in "detail" repeats the first field message; show it only when no field has one.
        if (!title && !image && !other.length) other.push(errorMessage(err))
        if (other.length) next.form = other.join(' ')
      } else {
        next.form = errorMessage(err)
      }
      setErrors(next)
      focusFirstError(next)
      setSubmitting(false)
    }
  }

  const field = (name: 'title' | 'image') => ({
    id: ids[name],
    className: `form-control ${errors[name] ? 'is-invalid' : ''}`,
    'aria-invalid': errors[name] ? true : undefined,
    'aria-describedby': `${ids[name]}-help${errors[name] ? ` ${ids[name]}-error` : ''}`,
  })
  const previewUrl = values.image.trim() && !validateProductInput(values).image ? values.image.trim() : ''
  const imageFailed = imageCheck !== null && imageCheck.url === previewUrl && !imageCheck.loaded

  return (
    <>
      <form noValidate onSubmit={submit} className="vstack gap-3" aria-busy={submitting}>
        {restored && dirty && (
          <div className="alert alert-info d-flex flex-wrap align-items-center gap-2 mb-0" role="status">
            <span className="flex-grow-1">Your unsaved changes were restored.</span>
            <button type="button" className="btn btn-sm btn-outline-secondary" onClick={discardDraft}>
              Discard them
            </button>
          </div>
        )}
        {errors.form && (
          <div className="alert alert-danger mb-0" role="alert">
            {errors.form}
          </div>
        )}
        <div>
          <label htmlFor={ids.title} className="form-label">
            Title
          </label>
          <input
            {...field('title')}
            ref={titleRef}
            name="title"
            type="text"
            autoComplete="off"
            required
            value={values.title}
            onChange={(e) => change('title', e.target.value)}
          />
          <div id={`${ids.title}-help`} className="form-text">
            Required, up to {TITLE_MAX} characters ({values.title.trim().length}/{TITLE_MAX}).
          </div>
          {errors.title && (
            <div id={`${ids.title}-error`} className="invalid-feedback d-block">
              {errors.title}
            </div>
          )}
        </div>
        <div>
          <label htmlFor={ids.image} className="form-label">
            Image URL
          </label>
          <input
            {...field('image')}
            ref={imageRef}
            name="image"
            type="url"
            inputMode="url"
            autoComplete="off"
            required
            placeholder="https://example.com/picture.jpg"
            value={values.image}
            onChange={(e) => change('image', e.target.value)}
          />
          <div id={`${ids.image}-help`} className="form-text">
            A full http:// or https:// address, up to {IMAGE_MAX} characters.
          </div>
          {errors.image && (
            <div id={`${ids.image}-error`} className="invalid-feedback d-block">
              {errors.image}
            </div>
          )}
          {imageFailed && !errors.image && (
            <div className="form-text text-warning-emphasis" role="status" data-testid="image-warning">
              ⚠ This address did not answer with an image. You can still save it; the shop shows a placeholder until it
              does.
            </div>
          )}
        </div>
        {previewUrl && (
          <figure className="mb-0" style={{ maxWidth: 240 }}>
            <ProductImage
              key={previewUrl}
              src={previewUrl}
              alt="Preview"
              onResult={(loaded) => setImageCheck({ url: previewUrl, loaded })}
            />
            <figcaption className="form-text">Preview</figcaption>
          </figure>
        )}
        <div className="d-flex flex-wrap gap-2">
          <button type="submit" className="btn btn-primary" disabled={submitting}>
            {submitting ? 'Saving…' : submitLabel}
          </button>
          <Link to={cancelTo} className="btn btn-outline-secondary">
            Cancel
          </Link>
        </div>
      </form>
      <ConfirmDialog
        open={blocker.state === 'blocked'}
        title="Leave without saving?"
        confirmLabel="Leave"
        onConfirm={() => {
          leaving.current = true
          clearDraft(draftKey)
          blocker.proceed?.()
        }}
        onCancel={() => blocker.reset?.()}
      >
        Your changes to this product are not saved. If you leave now they are lost.
      </ConfirmDialog>
    </>
  )
}
