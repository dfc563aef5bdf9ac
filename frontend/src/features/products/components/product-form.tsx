import { useId, useRef, useState, type FormEvent } from 'react'
import { Link } from 'react-router'
import { ProductImage } from '@/components/ui/product-image'
import { ApiError, errorMessage } from '@/lib/api-client'
import type { ProductInput } from '../api/types'
import { IMAGE_MAX, TITLE_MAX, normaliseProductInput, validateProductInput } from '../api/validation'

type Props = {
  initial?: ProductInput
  submitLabel: string
  /** Save the product; throw ApiError to show the server's field errors. */
  onSubmit: (input: ProductInput) => Promise<void>
}

type Errors = { title?: string; image?: string; form?: string }

/** Edit a product's title and image with client checks and the server's field errors. */
export function ProductForm({ initial = { title: '', image: '' }, submitLabel, onSubmit }: Props) {
  const [values, setValues] = useState<ProductInput>(initial)
  const [errors, setErrors] = useState<Errors>({})
  const [submitting, setSubmitting] = useState(false)
  const titleRef = useRef<HTMLInputElement>(null)
  const imageRef = useRef<HTMLInputElement>(null)
  const ids = { title: useId(), image: useId() }

  function change(field: keyof ProductInput, value: string) {
    setValues((v) => ({ ...v, [field]: value }))
    // Clear a field's error as soon as it is edited; it is re-checked on submit.
    if (errors[field]) setErrors((e) => ({ ...e, [field]: undefined }))
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
    try {
      await onSubmit(normaliseProductInput(values))
    } catch (err) {
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

  return (
    <form noValidate onSubmit={submit} className="vstack gap-3" aria-busy={submitting}>
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
      </div>
      {values.image.trim() && !validateProductInput(values).image && (
        <figure className="mb-0" style={{ maxWidth: 240 }}>
          <ProductImage key={values.image.trim()} src={values.image.trim()} alt="Preview" />
          <figcaption className="form-text">Preview</figcaption>
        </figure>
      )}
      <div className="d-flex flex-wrap gap-2">
        <button type="submit" className="btn btn-primary" disabled={submitting}>
          {submitting ? 'Saving…' : submitLabel}
        </button>
        <Link to="/admin/products" className="btn btn-outline-secondary">
          Cancel
        </Link>
      </div>
    </form>
  )
}
