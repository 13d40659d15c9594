// Shared contract of the adaptive concurrency limiters (AIMD, Gradient2): admission plus a feedback sample per request.

/**
 * How a request ended, from the limiter's point of view:
 * - success: the latency sample is meaningful.
 * - dropped: the upstream signalled overload (timeout, 503/429, connection refused); always a reason to back off.
 * - ignore: says nothing about upstream capacity (client cancelled, 4xx); only frees the slot.
 */
export type LimiterOutcome = 'success' | 'dropped' | 'ignore';

export interface ConcurrencyLimiter {
  /** Admit one request if inflight < limit; every true must be followed by exactly one release(). */
  tryAcquire(): boolean;
  /** Free the slot and feed the sample back into the limit. A release without an acquire is ignored. */
  release(latencyMs: number, outcome: LimiterOutcome): void;
  /** Current concurrency limit (an integer >= 1). */
  readonly limit: number;
  readonly inflight: number;
}
