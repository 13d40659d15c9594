// Envoy-style per-cluster circuit breaker: hard caps on connections, pending requests, requests and retries.

export type BreakerThreshold = 'max_connections' | 'max_pending_requests' | 'max_requests' | 'max_retries';

export const BREAKER_THRESHOLDS: readonly BreakerThreshold[] = ['max_connections', 'max_pending_requests', 'max_requests', 'max_retries'];

export interface CircuitBreakerConfig {
  /** Envoy default 1024 each; Infinity disables a cap (what Istio effectively does). */
  readonly maxConnections?: number;
  readonly maxPendingRequests?: number;
  readonly maxRequests?: number;
  /** Concurrent retries; Envoy default 3. Ignored when retryBudget is set, as in Envoy. */
  readonly maxRetries?: number;
  /**
   * Envoy's circuit-breaker retry_budget: concurrent retries may be budgetPercent of active + pending requests,
   * but never fewer than minRetryConcurrency. Scales with load where a fixed maxRetries does not.
   */
  readonly retryBudget?: { readonly budgetPercent?: number; readonly minRetryConcurrency?: number };
}

export const DEFAULT_CIRCUIT_BREAKER = {
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
  retryBudget: { budgetPercent: 20, minRetryConcurrency: 3 },
} as const;

export interface CircuitBreakerSnapshot {
  readonly connections: number;
  readonly pending: number;
  readonly requests: number;
  readonly retries: number;
  /** Rejections per threshold since creation (Envoy upstream_cx_overflow, upstream_rq_pending_overflow, ...). */
  readonly opens: Readonly<Record<BreakerThreshold, number>>;
  /** Thresholds currently at capacity (Envoy's cx_open, rq_pending_open, rq_open, rq_retry_open gauges). */
  readonly open: readonly BreakerThreshold[];
}

/**
 * Counters with hard limits, one instance per cluster (and priority, if used). Every successful tryAcquireX()
 * must be paired with exactly one releaseX(); a release without a matching acquire is ignored rather than
 * driving a counter negative, which would silently raise the effective limit.
 */
export class CircuitBreaker {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
  private readonly budgetPercent: number | undefined;
  private readonly minRetryConcurrency: number;

  private connections = 0;
  private pending = 0;
  private requests = 0;
  private retries = 0;
  private readonly opensBy: Record<BreakerThreshold, number> = {
    max_connections: 0,
    max_pending_requests: 0,
    max_requests: 0,
    max_retries: 0,
  };
  private lastTripped: BreakerThreshold | undefined;

  constructor(config: CircuitBreakerConfig = {}) {
    this.maxConnections = limit('maxConnections', config.maxConnections ?? DEFAULT_CIRCUIT_BREAKER.maxConnections);
    this.maxPendingRequests = limit('maxPendingRequests', config.maxPendingRequests ?? DEFAULT_CIRCUIT_BREAKER.maxPendingRequests);
    this.maxRequests = limit('maxRequests', config.maxRequests ?? DEFAULT_CIRCUIT_BREAKER.maxRequests);
    this.maxRetries = limit('maxRetries', config.maxRetries ?? DEFAULT_CIRCUIT_BREAKER.maxRetries);
    if (config.retryBudget) {
      this.budgetPercent = limit('retryBudget.budgetPercent', config.retryBudget.budgetPercent ?? DEFAULT_CIRCUIT_BREAKER.retryBudget.budgetPercent);
      this.minRetryConcurrency = limit(
        'retryBudget.minRetryConcurrency',
        config.retryBudget.minRetryConcurrency ?? DEFAULT_CIRCUIT_BREAKER.retryBudget.minRetryConcurrency,
      );
    } else {
      this.budgetPercent = undefined;
      this.minRetryConcurrency = 0;
    }
  }

  tryAcquireConnection(): boolean {
    if (this.connections >= this.maxConnections) return this.reject('max_connections');
    this.connections++;
    return true;
  }

  releaseConnection(): void {
    if (this.connections > 0) this.connections--;
  }

  /** A request waiting for a connection from the pool. */
  tryAcquirePending(): boolean {
    if (this.pending >= this.maxPendingRequests) return this.reject('max_pending_requests');
    this.pending++;
    return true;
  }

  releasePending(): void {
    if (this.pending > 0) this.pending--;
  }

  /** A request in flight on an upstream connection (retries included, as in Envoy). */
  tryAcquireRequest(): boolean {
    if (this.requests >= this.maxRequests) return this.reject('max_requests');
    this.requests++;
    return true;
  }

  releaseRequest(): void {
    if (this.requests > 0) this.requests--;
  }

  /** A retry in flight; acquire before sending the retry, release when that attempt finishes. */
  tryAcquireRetry(): boolean {
    if (this.retries >= this.retryLimit()) return this.reject('max_retries');
    this.retries++;
    return true;
  }

  releaseRetry(): void {
    if (this.retries > 0) this.retries--;
  }

  /** Effective concurrent-retry cap: maxRetries, or the load-scaled budget when one is configured. */
  retryLimit(): number {
    if (this.budgetPercent === undefined) return this.maxRetries;
    // Envoy counts active plus pending requests; a retry itself is also an active request.
    const budget = Math.floor(((this.requests + this.pending) * this.budgetPercent) / 100);
    return Math.max(this.minRetryConcurrency, budget);
  }

  /**
   * The threshold that last rejected something, while it is still at capacity; undefined once it has room
   * again. Answers "why is this cluster shedding right now" for logs and the access log's response flags.
   */
  openedBy(): BreakerThreshold | undefined {
    if (this.lastTripped !== undefined && this.isOpen(this.lastTripped)) return this.lastTripped;
    return undefined;
  }

  /** At capacity: the next acquire of this kind would be rejected. */
  isOpen(threshold: BreakerThreshold): boolean {
    switch (threshold) {
      case 'max_connections':
        return this.connections >= this.maxConnections;
      case 'max_pending_requests':
        return this.pending >= this.maxPendingRequests;
      case 'max_requests':
        return this.requests >= this.maxRequests;
      case 'max_retries':
        return this.retries >= this.retryLimit();
    }
  }

  /** Rejections per threshold ("breaker opens by threshold" metric). */
  opens(threshold: BreakerThreshold): number {
    return this.opensBy[threshold];
  }

  /** How many more acquisitions of this kind would succeed now. */
  remaining(threshold: BreakerThreshold): number {
    switch (threshold) {
      case 'max_connections':
        return Math.max(0, this.maxConnections - this.connections);
      case 'max_pending_requests':
        return Math.max(0, this.maxPendingRequests - this.pending);
      case 'max_requests':
        return Math.max(0, this.maxRequests - this.requests);
      case 'max_retries':
        return Math.max(0, this.retryLimit() - this.retries);
    }
  }

  snapshot(): CircuitBreakerSnapshot {
    return {
      connections: this.connections,
      pending: this.pending,
      requests: this.requests,
      retries: this.retries,
      opens: { ...this.opensBy },
      open: BREAKER_THRESHOLDS.filter((t) => this.isOpen(t)),
    };
  }

  private reject(threshold: BreakerThreshold): false {
    this.opensBy[threshold]++;
    this.lastTripped = threshold;
    return false;
  }
}

function limit(name: string, v: number): number {
  if (!(v >= 0)) throw new RangeError(`${name} must be >= 0, got ${v}`);
  return v;
}
