import { useState } from 'react'

type Props = { src: string; alt: string; className?: string; ratio?: '4x3' | '1x1' }

/** Show a product image, or a labelled placeholder when it is missing or fails to load. */
export function ProductImage({ src, alt, className = '', ratio = '4x3' }: Props) {
  // Remember which URL failed, so a new URL (after an edit) gets a fresh attempt.
  const [failedSrc, setFailedSrc] = useState<string | null>(null)
  const broken = !src || failedSrc === src

  return (
    <div className={`ratio ratio-${ratio} bg-body-secondary overflow-hidden ${className}`}>
      {broken ? (
        <div
          role="img"
          aria-label={`${alt} (image unavailable)`}
          className="d-flex flex-column align-items-center justify-content-center text-body-secondary small"
          data-testid="image-placeholder"
        >
          <span aria-hidden="true" className="fs-3">
            🖼
          </span>
          <span aria-hidden="true">No image</span>
        </div>
      ) : (
        <img
          src={src}
          alt={alt}
          loading="lazy"
          referrerPolicy="no-referrer"
          className="w-100 h-100 object-fit-cover"
          onError={() => setFailedSrc(src)}
        />
      )}
    </div>
  )
}
