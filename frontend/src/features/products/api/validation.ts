import type { ProductInput } from './types'

// Mirrors the admin service's serializer so most mistakes never leave the browser.
export const TITLE_MAX = 200
export const IMAGE_MAX = 500

export type ProductFieldErrors = Partial<Record<keyof ProductInput, string>>

/** Return the trimmed input the server will see. */
export function normaliseProductInput(input: ProductInput): ProductInput {
  return { title: input.title.trim(), image: input.image.trim() }
}

/** Check a product form like the server does; an empty object means valid. */
export function validateProductInput(raw: ProductInput): ProductFieldErrors {
  const input = normaliseProductInput(raw)
  const errors: ProductFieldErrors = {}
  if (!input.title) errors.title = 'Title is required.'
  else if (input.title.length > TITLE_MAX)
    errors.title = `Title must be at most ${TITLE_MAX} characters (it has ${input.title.length}).`

  if (!input.image) errors.image = 'Image URL is required.'
  else if (input.image.length > IMAGE_MAX)
    errors.image = `Image URL must be at most ${IMAGE_MAX} characters (it has ${input.image.length}).`
  else if (!isHttpUrl(input.image)) errors.image = 'Enter a full http:// or https:// URL.'
  return errors
}

function isHttpUrl(value: string): boolean {
  if (/\s/.test(value)) return false
  try {
    const url = new URL(value)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname.length > 0
  } catch {
    return false
  }
}
