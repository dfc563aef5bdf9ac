/** A product as the admin service stores it. */
export type Product = {
  id: number
  title: string
  image: string
  likes: number
  version: number
  created_at: string
  updated_at: string
}

/** The fields an admin may write. */
export type ProductInput = { title: string; image: string }
