import { ApiError, NetworkError } from '@/lib/api-client'
import { dlqErrorMessage, messages, timeAgo } from './format'

describe('timeAgo', () => {
  const now = Date.parse('2026-12-06T16:40:00Z')
  it.each([
    ['2026-12-06T16:39:30Z', 'just now'],
    ['2026-12-06T16:37:00Z', '3 min ago'],
    ['2026-12-06T14:40:00+00:00', '2 h ago'],
    ['2026-12-01T16:40:00Z', '5 days ago'],
    ['2026-12-06T16:41:00Z', 'just now'],
    [null, 'unknown'],
    ['not a date', 'unknown'],
  ])('%s reads as %s', (iso, expected) => {
    expect(timeAgo(iso, now)).toBe(expected)
  })
})

describe('dlqErrorMessage', () => {
  it('names what to do next for each failure', () => {
    expect(dlqErrorMessage(new NetworkError(new TypeError('x')), 'admin')).toMatch(/could not be reached/)
    expect(dlqErrorMessage(new ApiError(401, {}), 'admin')).toMatch(/Sign in again/)
    expect(dlqErrorMessage(new ApiError(400, { error: 'invalid', detail: 'limit: 1..200' }), 'main')).toBe(
      'The request was refused: limit: 1..200',
    )
    expect(dlqErrorMessage(new ApiError(500, 'Internal'), 'main')).toMatch(/Internal/)
    expect(dlqErrorMessage(new Error('boom'), 'main')).toBe('boom')
    expect(messages(1)).toBe('1 message')
    expect(messages(12)).toBe('12 messages')
  })
})
