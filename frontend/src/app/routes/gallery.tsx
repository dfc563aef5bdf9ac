import { Gallery } from '@/features/gallery/components/gallery'
import { useGalleryParams } from '@/features/gallery/hooks/use-gallery-params'

/** Show the shoppers' gallery; a search names itself in the tab and the history list. */
export function GalleryRoute() {
  const { filter } = useGalleryParams()
  return (
    <>
      <title>{filter.q ? `“${filter.q}” · Gallery · Shop` : 'Gallery · Shop'}</title>
      <h1 className="h3 mb-3">Products</h1>
      <Gallery />
    </>
  )
}
