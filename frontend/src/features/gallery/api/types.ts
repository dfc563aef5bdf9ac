/** A product as the shop (main service) shows it to this shopper. */
export type GalleryProduct = {
  id: number
  title: string
  image: string
  likes: number
  liked: boolean
}

/** The main service's answer to a like or unlike. */
export type LikeResult = { id: number; likes: number; liked: boolean }
