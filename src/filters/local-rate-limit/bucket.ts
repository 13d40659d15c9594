// Token buckets per key with a bounded key table (LRU): the pure part of local_rate_limit, on an injected clock.

export interface BucketPolicy {
  /** Most tokens a bucket holds (the burst); a new key starts full. */
  readonly burst: number;
  /** Tokens added per interval, continuously (fractional tokens accumulate). */
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
  /** Most keys tracked; past it the least recently used key is forgotten (it starts full again when it returns). */
  readonly maxKeys: number;
}

export interface Decision {
  readonly allowed: boolean;
  /** Whole tokens left after this request. */
  readonly remaining: number;
  /** ms until the next token (0 when one is available now). */
  readonly retryAfterMs: number;
  /** ms until the bucket is full again. */
  readonly resetMs: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  readonly #p: BucketPolicy;
  readonly #ratePerMs: number;
  /** Map iteration order is insertion order: re-inserting on use keeps the least recently used first. */
  readonly #table = new Map<string, Bucket>();
  evictions = 0;

  constructor(policy: BucketPolicy) {
    this.#p = policy;
    this.#ratePerMs = policy.tokensPerFill / policy.fillIntervalMs;
  }

  get size(): number {
    return this.#table.size;
  }

  /** Takes one token for `key` at time `now` (ms, monotonic). */
  take(key: string, now: number): Decision {
    const p = this.#p;
    let b = this.#table.get(key);
    if (b === undefined) {
      if (this.#table.size >= p.maxKeys) {
        const oldest = this.#table.keys().next().value;
        if (oldest !== undefined) this.#table.delete(oldest);
        this.evictions++;
      }
      b = { tokens: p.burst, at: now };
    } else {
      this.#table.delete(key);
      const elapsed = Math.max(0, now - b.at);
      b.tokens = Math.min(p.burst, b.tokens + elapsed * this.#ratePerMs);
      b.at = now;
    }
    this.#table.set(key, b);
    const allowed = b.tokens >= 1;
    if (allowed) b.tokens -= 1;
    const retryAfterMs = b.tokens >= 1 ? 0 : Math.ceil((1 - b.tokens) / this.#ratePerMs);
    const resetMs = Math.ceil((p.burst - b.tokens) / this.#ratePerMs);
    return { allowed, remaining: Math.floor(b.tokens), retryAfterMs, resetMs };
  }
}

/** In-flight requests per key; an entry lives only while its key has a request in flight. */
export class InFlight {
  readonly #n = new Map<string, number>();
  constructor(readonly max: number) {}
  get size(): number {
    return this.#n.size;
  }
  /** Takes a slot; false when the key already has `max` in flight. */
  acquire(key: string): boolean {
    const n = this.#n.get(key) ?? 0;
    if (n >= this.max) return false;
    this.#n.set(key, n + 1);
    return true;
  }
  release(key: string): void {
    const n = this.#n.get(key) ?? 0;
    if (n <= 1) this.#n.delete(key);
    else this.#n.set(key, n - 1);
  }
}
