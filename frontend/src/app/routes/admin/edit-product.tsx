import { useCallback, useEffect, useState } from 'react'
import { Link, useLocation, useNavigate, useParams } from 'react-router'
import { Loading, Problem } from '@/components/ui/status'
import { useToast } from '@/components/ui/toast-context'
import { getProduct } from '@/features/products/api/get-product'
import type { Product } from '@/features/products/api/types'
import { updateProduct } from '@/features/products/api/update-product'
import { ProductForm } from '@/features/products/components/product-form'
import type { ListReturn } from '@/features/products/components/products-table'
import { ApiError, errorMessage } from '@/lib/api-client'

type Load = { status: 'loading' } | { status: 'ready'; product: Product } | { status: 'missing' } | { status: 'error'; message: string }

/** Edit the product named in the URL; a new id gets a fresh page state. */
export function EditProductRoute() {
  const { id } = useParams()
  return <EditProduct key={id} productId={Number(id)} />
}

/** Load a product, edit it, and go back to the list. */
function EditProduct({ productId }: { productId: number }) {
  const navigate = useNavigate()
  const toast = useToast()
  // Back to the page of the list the admin came from (its search, sort and page), or the first.
  const list = (useLocation().state as ListReturn | null)?.list
  const listUrl = `/admin/products${typeof list === 'string' && list.startsWith('?') ? list : ''}`
  const [load, setLoad] = useState<Load>({ status: 'loading' })
  const [attempt, setAttempt] = useState(0)

  useEffect(() => {
    if (!Number.isInteger(productId) || productId <= 0) return
    const ctrl = new AbortController()
    getProduct(productId, ctrl.signal)
      .then((product) => setLoad({ status: 'ready', product }))
      .catch((err: unknown) => {
        if (ctrl.signal.aborted) return
        if (err instanceof ApiError && err.status === 404) setLoad({ status: 'missing' })
        else setLoad({ status: 'error', message: errorMessage(err) })
      })
    return () => ctrl.abort()
  }, [productId, attempt])

  const retry = useCallback(() => {
    setLoad({ status: 'loading' })
    setAttempt((n) => n + 1)
  }, [])

  const invalidId = !Number.isInteger(productId) || productId <= 0
  let body
  if (invalidId || load.status === 'missing') {
    body = (
      <Problem variant="warning" title="This product does not exist.">
        It may have been deleted. <Link to="/admin/products">Back to products</Link>.
      </Problem>
    )
  } else if (load.status === 'loading') {
    body = <Loading label="Loading product…" />
  } else if (load.status === 'error') {
    body = (
      <Problem title="We couldn't load this product." onRetry={retry}>
        {load.message}
      </Problem>
    )
  } else {
    const { product } = load
    body = (
      <ProductForm
        initial={{ title: product.title, image: product.image }}
        submitLabel="Save changes"
        cancelTo={listUrl}
        onSubmit={async (input) => {
          await updateProduct(product.id, input)
          toast.show('success', `Saved “${input.title}”. The shop shows it in a few seconds.`)
          navigate(listUrl, { state: { highlight: product.id } satisfies ListReturn })
        }}
      />
    )
  }

  return (
    <div className="col-12 col-lg-8">
      <title>Edit product · Admin</title>
      <h1 className="h3 mb-3">Edit product</h1>
      {body}
    </div>
  )
}
