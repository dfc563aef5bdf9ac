import { DeadLettersWorkbench } from '@/features/dead-letters/components/dead-letters-workbench'

/** The dead-letter workbench for staff. */
export function DeadLettersRoute() {
  return (
    <>
      <title>Dead letters · Admin</title>
      <DeadLettersWorkbench />
    </>
  )
}
