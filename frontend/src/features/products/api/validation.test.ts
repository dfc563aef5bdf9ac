import { IMAGE_MAX, TITLE_MAX, validateProductInput } from './validation'

const ok = { title: 'Mug', image: 'https://img.example.com/mug.jpg' }

describe('validateProductInput', () => {
  it('accepts a title and an http(s) image URL', () => {
    expect(validateProductInput(ok)).toEqual({})
    expect(validateProductInput({ title: 'x'.repeat(TITLE_MAX), image: 'http://localhost:8000/a.png' })).toEqual({})
  })

  it('requires a non-blank title of at most 200 characters', () => {
    expect(validateProductInput({ ...ok, title: '   ' }).title).toBe('Title is required.')
    expect(validateProductInput({ ...ok, title: 'x'.repeat(TITLE_MAX + 1) }).title).toMatch(/at most 200/)
  })

  it('requires an http(s) image URL of at most 500 characters', () => {
    expect(validateProductInput({ ...ok, image: '' }).image).toBe('Image URL is required.')
    expect(validateProductInput({ ...ok, image: 'not a url' }).image).toMatch(/http/)
    expect(validateProductInput({ ...ok, image: 'ftp://files.example.com/a.png' }).image).toMatch(/http/)
    expect(validateProductInput({ ...ok, image: 'javascript:alert(1)' }).image).toMatch(/http/)
    const long = `https://img.example.com/${'a'.repeat(IMAGE_MAX)}`
    expect(validateProductInput({ ...ok, image: long }).image).toMatch(/at most 500/)
  })
})
