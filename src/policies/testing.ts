// Test helpers for the policy suites: a manually advanced FakeClock and the shared seeded PRNG.

import type { Readable } from 'node:stream';
import { Cancellation } from '../core/cancel.js';
import type { Clock } from '../core/clock.js';
import { HeaderList } from '../core/headers.js';
import type { ProxyRequest } from '../core/service.js';

export { mulberry32 } from '../balancers/testing.js';

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

/**
 * Deterministic Clock: time moves only through advance(), and due timers fire in (due time, creation order).
 * Timers scheduled by a firing callback also fire within the same advance() if they fall due before its end,
 * which is what a real event loop would do over that span.
 */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: Timer[] = [];

  constructor(startMs = 0) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): () => void {
    const timer: Timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }

  /** Moves time forward by ms, firing every due timer with now() equal to its due time. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`advance(${ms}): time only moves forward`);
    const end = this.t + ms;
    for (;;) {
      const next = this.nextDue(end);
      if (next === undefined) break;
      this.timers = this.timers.filter((x) => x !== next);
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }

  /** Number of scheduled, not yet fired or cancelled timers. */
  pending(): number {
    return this.timers.filter((x) => !x.cancelled).length;
  }

  private nextDue(end: number): Timer | undefined {
    this.timers = this.timers.filter((x) => !x.cancelled);
    let best: Timer | undefined;
    for (const x of this.timers) {
      if (x.at > end) continue;
      if (best === undefined || x.at < best.at || (x.at === best.at && x.seq < best.seq)) best = x;
    }
    return best;
  }
}

/** A ProxyRequest for layer tests: GET /x to "app" on cluster c1, with no deadline. */
export function testRequest(opts: { method?: string; body?: Readable | null; headers?: string[]; startTime?: number; fromSidecar?: boolean } = {}): ProxyRequest {
  return {
    method: opts.method ?? 'GET',
    authority: 'app',
    path: '/x',
    scheme: 'http',
    headers: new HeaderList(opts.headers ?? []),
    body: opts.body ?? null,
    contentLength: -1,
    cancel: new Cancellation(),
    context: {
      requestId: 'r',
      startTime: opts.startTime ?? 0,
      listener: 'l',
      downstreamAddress: '127.0.0.1',
      downstreamProtocol: 'HTTP/1.1',
      scheme: 'http',
      fromSidecar: opts.fromSidecar ?? false,
      route: 'r',
      cluster: 'c1',
      endpoint: '',
      attempts: 0,
      flag: undefined,
      error: undefined,
      deadline: Infinity,
      downstreamConnection: undefined,
      poolWait: undefined,
    },
  };
}
