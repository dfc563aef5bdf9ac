import { useState } from 'react'

type Props = {
  src: string
  alt: string
  className?: string
  ratio?: '4x3' | '1x1'
  /** A thumbnail too small for a caption: the placeholder shows only its picture. */
  compact?: boolean
  /** Told whether the address answered with an image (the product form warns when it did not). */
  onResult?: (loaded: boolean) => void
}

/** A picture frame drawn in SVG: no emoji, so it shows whatever fonts the device has. */
function PlaceholderPicture() {
  return (
    <svg viewBox="0 0 24 24" width="32" height="32" aria-hidden="true" focusable="false" className="placeholder-picture">
      <rect x="3" y="4" width="18" height="16" rx="2" fill="none" stroke="currentColor" strokeWidth="1.5" />
      <circle cx="9" cy="10" r="1.75" fill="currentColor" />
      <path d="M4 18l5-5 3.5 3.5L15 14l5 4" fill="none" stroke="currentColor" strokeWidth="1.5" strokeLinejoin="round" />
    </svg>
  )
}

/** Show a product image, or a labelled placeholder when it is missing or fails to load. */
export function ProductImage({ src, alt, className = '', ratio = '4x3', compact = false, onResult }: Props) {
  // Remember which URL failed, so a new URL (after an edit) gets a fresh attempt.
  const [failedSrc, setFailedSrc] = useState<string | null>(null)
  const broken = !src || failedSrc === src

  return (
    <div className={`ratio ratio-${ratio} bg-body-secondary overflow-hidden ${className}`}>
      {broken ? (
        <div
          role="img"
          aria-label={`${alt} (image unavailable)`}
          title={compact ? 'No image' : undefined}
          className="d-flex flex-column align-items-center justify-content-center gap-1 text-body-secondary small"
          data-testid="image-placeholder"
        >
          <PlaceholderPicture />
          {!compact && <span aria-hidden="true">No image</span>}
        </div>
      ) : (
        <img
          src={src}
          alt={alt}
          loading="lazy"
          referrerPolicy="no-referrer"
          className="w-100 h-100 object-fit-cover"
          onLoad={() => onResult?.(true)}
          onError={() => {
            setFailedSrc(src)
            onResult?.(false)
          }}
        />
      )}
    </div>
  )
}
