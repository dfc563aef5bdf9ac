import { Gallery } from '@/features/gallery/components/gallery'

/** Show the shoppers' gallery. */
export function GalleryRoute() {
  return (
    <>
      <title>Gallery · Shop</title>
      <h1 className="h3 mb-3">Products</h1>
      <Gallery />
    </>
  )
}
