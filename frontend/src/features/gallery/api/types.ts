/** A product as the shop (main service) shows it to this shopper. */
export type GalleryProduct = {
  id: number
  title: string
  image: string
  likes: number
  liked: boolean
  /** Replica positions the main service reports (admin's version, the like count's sequence); unused here. */
  version?: number
  likes_seq?: number
}

/** The main service's answer to a like or unlike. */
export type LikeResult = { id: number; likes: number; liked: boolean }

/** The gallery's orders the shopper can pick; the server also knows "id". */
export type GallerySort = 'newest' | 'liked'

/** What the gallery shows: a title search and an order. */
export type GalleryFilter = { q: string; sort: GallerySort }

/** One page of the list and the cursor of the next (null on the last page). */
export type GalleryPage = { products: GalleryProduct[]; nextCursor: string | null }
