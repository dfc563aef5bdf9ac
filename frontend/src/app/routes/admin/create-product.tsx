import { useNavigate } from 'react-router'
import { useToast } from '@/components/ui/toast-context'
import { createProduct } from '@/features/products/api/create-product'
import { ProductForm } from '@/features/products/components/product-form'
import type { ListReturn } from '@/features/products/components/products-table'

/** Create a product and go back to the list, newest first, with the new row highlighted. */
export function CreateProductRoute() {
  const navigate = useNavigate()
  const toast = useToast()
  return (
    <div className="col-12 col-lg-8">
      <title>New product · Admin</title>
      <h1 className="h3 mb-3">New product</h1>
      <ProductForm
        submitLabel="Create product"
        onSubmit={async (input) => {
          const product = await createProduct(input)
          toast.show('success', `Created “${product?.title ?? input.title}”.`)
          navigate('/admin/products', { state: { highlight: product?.id } satisfies ListReturn })
        }}
      />
    </div>
  )
}
