// Fair shares of one endpoint's HTTP/1.1 pool between downstream connections, applied only under contention.
//
// A downstream connection may take every pooled connection while nobody else wants one: a lone client, and above
// all the mesh case where one peer sidecar's HTTP/2 connection carries all the traffic, is never limited. Once the
// pool is full and requests of other downstreams wait, a downstream holding its share or more is refused further
// requests (503 UO), and each connection that frees up goes to the oldest waiter whose downstream holds less than
// its share. A request in flight keeps its connection unless its downstream, at its share, has left the response
// unread for reclaim_stalled_after (the pool cuts it then); a holder that stopped sending is freed by
// request_body_timeout.

interface Share {
  /** Pooled connections this downstream's requests hold now. */
  held: number;
  /** This downstream's requests queued for a connection. */
  waiting: number;
}

export class FairShare {
  /** Connections one downstream may hold while others wait: share x capacity, at least one. */
  readonly limit: number;
  readonly share: number;
  readonly #shares = new WeakMap<object, Share>();
  /** Downstreams with a request queued. */
  #waitingKeys = 0;
  /** Requests queued, all downstreams together. */
  #waiting = 0;
  /** Downstreams holding their share or more. */
  #atLimit = 0;

  constructor(capacity: number, share: number) {
    this.share = share;
    this.limit = Math.max(1, Math.floor(capacity * share));
  }

  held(key: object | undefined): number {
    return key === undefined ? 0 : (this.#shares.get(key)?.held ?? 0);
  }

  /** Whether some downstream holds its share or more (nothing to reclaim otherwise). */
  get anyAtLimit(): boolean {
    return this.#atLimit > 0;
  }

  hold(key: object | undefined): void {
    if (key !== undefined && ++this.#of(key).held === this.limit) this.#atLimit++;
  }

  unhold(key: object | undefined): void {
    if (key === undefined) return;
    const s = this.#shares.get(key);
    if (s !== undefined && s.held > 0 && s.held-- === this.limit) this.#atLimit--;
  }

  queued(key: object | undefined): void {
    this.#waiting++;
    if (key === undefined) return;
    if (this.#of(key).waiting++ === 0) this.#waitingKeys++;
  }

  dequeued(key: object | undefined): void {
    this.#waiting--;
    if (key === undefined) return;
    const s = this.#shares.get(key);
    if (s !== undefined && s.waiting > 0 && --s.waiting === 0) this.#waitingKeys--;
  }

  /** Whether a request of `key` that finds the pool full may wait: not while it holds its share and another downstream waits. */
  mayQueue(key: object | undefined): boolean {
    if (key === undefined) return true;
    const s = this.#shares.get(key);
    return s === undefined || s.held < this.limit || this.#waiting - s.waiting === 0;
  }

  /** Which queued entry to serve next: the oldest whose downstream holds less than its share, else the oldest. */
  pick<T>(queue: readonly T[], keyOf: (entry: T) => object | undefined): number {
    // One downstream waiting (the common case under load, and the mesh case): first come, first served.
    if (this.#waitingKeys <= 1 || queue.length <= 1) return 0;
    for (let i = 0; i < queue.length; i++) if (this.held(keyOf(queue[i]!)) < this.limit) return i;
    return 0;
  }

  #of(key: object): Share {
    let s = this.#shares.get(key);
    if (s === undefined) this.#shares.set(key, (s = { held: 0, waiting: 0 }));
    return s;
  }
}
