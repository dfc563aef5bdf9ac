import { ProductImage } from '@/components/ui/product-image'
import type { GalleryProduct } from '../api/types'
import './gallery.css'

type Props = { product: GalleryProduct; busy: boolean; onToggleLike: (product: GalleryProduct) => void }

/** Show one product with its like count and a like/unlike button. */
export function ProductCard({ product, busy, onToggleLike }: Props) {
  const { title, image, likes, liked } = product
  return (
    <article className={`card h-100 shadow-sm ${liked ? 'border-danger-subtle' : ''}`} aria-label={title}>
      <ProductImage src={image} alt={title} className="card-img-top" />
      <div className="card-body d-flex flex-column gap-2">
        {/* Clamped to two lines on screen; the whole title stays in the text (screen readers) and the tooltip. */}
        <h2 className="card-title h6 mb-0 text-break gallery-card-title" title={title}>
          {title}
        </h2>
        <div className="mt-auto d-flex align-items-center justify-content-between gap-2">
          <span className="text-body-secondary small" data-testid="like-count">
            {likes} {likes === 1 ? 'like' : 'likes'}
            {liked && <span className="visually-hidden"> (you like this)</span>}
          </span>
          <button
            type="button"
            className={`btn gallery-like-button flex-shrink-0 ${liked ? 'btn-danger' : 'btn-outline-danger'}`}
            aria-label={`${liked ? 'Unlike' : 'Like'} ${title}`}
            aria-busy={busy}
            onClick={() => onToggleLike(product)}
          >
            <span aria-hidden="true">{liked ? '♥ ' : '♡ '}</span>
            {liked ? 'Unlike' : 'Like'}
          </button>
        </div>
      </div>
    </article>
  )
}
