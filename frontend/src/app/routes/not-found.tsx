import { Link } from 'react-router'

/** Tell the visitor this address shows nothing. */
export function NotFoundRoute() {
  return (
    <>
      <title>Not found · Shop</title>
      <h1 className="h3">Page not found</h1>
      <p>
        There is nothing at this address. <Link to="/">Go to the gallery</Link>.
      </p>
    </>
  )
}
