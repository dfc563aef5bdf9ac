import { useMutation, useQueryClient } from '@tanstack/react-query'
import { useCallback, useSyncExternalStore } from 'react'
import { useToast } from '@/components/ui/toast-context'
import { ApiError, errorMessage } from '@/lib/api-client'
import { galleryKeys } from '../api/get-gallery-products'
import { likeProduct, unlikeProduct } from '../api/like-product'
import type { GalleryProduct } from '../api/types'
import { likeLedgerFor, type LikeCounts } from './like-ledger'
import { patchGalleryProduct } from './use-gallery-products'

type Variables = { product: GalleryProduct; like: boolean; optimistic: LikeCounts }

/**
 * Like and unlike at once, then settle on what the server says.
 *
 * The count changes before the request leaves; a failure puts the server's last count back and
 * says so; already_liked / not_liked mean the server already has what we asked for (another tab):
 * keep it and re-read the count; a 404 means an admin deleted the product: drop it quietly.
 */
export function useToggleLike() {
  const client = useQueryClient()
  const toast = useToast()
  const ledger = likeLedgerFor(client)
  const pending = useSyncExternalStore(ledger.subscribe, ledger.pendingIds)

  const { mutate } = useMutation({
    mutationKey: [...galleryKeys.all, 'like'],
    mutationFn: ({ product, like }: Variables) => (like ? likeProduct(product.id) : unlikeProduct(product.id)),
    onMutate: async ({ product, optimistic }) => {
      // A refresh already on its way carries the old count: stop it (a page the shopper asked for may finish).
      await client.cancelQueries({
        queryKey: galleryKeys.all,
        predicate: (query) => query.state.data !== undefined && !query.state.fetchMeta?.fetchMore,
      })
      patchGalleryProduct(client, product.id, optimistic)
    },
    onError: (err, { product, like, optimistic }) => {
      if (err instanceof ApiError && (err.code === 'already_liked' || err.code === 'not_liked')) {
        const counts = { liked: err.code === 'already_liked', likes: optimistic.likes }
        ledger.settle(product.id, counts)
        patchGalleryProduct(client, product.id, counts)
        void client.invalidateQueries({ queryKey: galleryKeys.all })
      } else if (err instanceof ApiError && err.status === 404) {
        ledger.remove(product.id)
        patchGalleryProduct(client, product.id, null)
        toast.show('info', `“${product.title}” is no longer available.`)
      } else {
        const base = ledger.rollback(product.id)
        if (base) patchGalleryProduct(client, product.id, base)
        toast.show('danger', `Couldn't ${like ? 'like' : 'unlike'} “${product.title}”: ${errorMessage(err)}`)
      }
    },
    onSettled: (result, _err, { product }) => {
      if (!result) return
      // The server's count wins over our +1: someone else may have liked it meanwhile.
      const counts = { likes: result.likes, liked: result.liked }
      ledger.settle(product.id, counts)
      patchGalleryProduct(client, product.id, counts)
    },
  })

  const toggleLike = useCallback(
    (product: GalleryProduct) => {
      const like = !product.liked
      const optimistic = ledger.begin(product, like)
      if (!optimistic) return // a second click while the first is in flight
      mutate({ product, like, optimistic })
    },
    [ledger, mutate],
  )

  return { pending, toggleLike }
}
