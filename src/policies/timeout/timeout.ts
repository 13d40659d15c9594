// Route timeout and caller deadline: the time allowed until the response head arrives. The effective deadline is the
// earlier of the route timeout and the caller's own (grpc-timeout always; x-sidecar-timeout when the route allows it).
// Exceeding it aborts the upstream attempt and answers 504 UT, naming which limit it was.
import { systemClock, type Clock } from '../../core/clock.js';
import { ProxyError } from '../../core/errors.js';
import type { Cancellation } from '../../core/cancel.js';
import type { Layer, RequestContext } from '../../core/service.js';
import { GRPC_TIMEOUT_HEADER, parseGrpcTimeout, parseTimeoutHeader, TIMEOUT_HEADER } from './deadline.js';

export interface TimeoutOptions {
  /** Honour a caller's x-sidecar-timeout request header (routes[].timeout_header_allowed). */
  readonly headerAllowed?: boolean;
}

export function timeoutLayer(ms: number, clock: Clock = systemClock, opts: TimeoutOptions = {}): Layer {
  const headerAllowed = opts.headerAllowed === true;
  const routeDeadlines = new DeadlineQueue(clock, ms);
  return (next) => (req) => {
    const ctx = req.context;
    const headers = req.headers;
    let deadline = ms > 0 ? ctx.startTime + ms : Infinity;
    /** Set when the caller's deadline is the earlier one: which header and value. */
    let caller: string | undefined;
    const grpc = headers.get(GRPC_TIMEOUT_HEADER);
    if (grpc !== undefined) {
      const t = parseGrpcTimeout(grpc);
      if (t !== undefined && ctx.startTime + t < deadline) {
        deadline = ctx.startTime + t;
        caller = `${GRPC_TIMEOUT_HEADER}: ${grpc}`;
      }
    }
    if (headerAllowed) {
      const h = headers.get(TIMEOUT_HEADER);
      if (h !== undefined) {
        const t = parseTimeoutHeader(h);
        if (t !== undefined && ctx.startTime + t < deadline) {
          deadline = ctx.startTime + t;
          caller = `${TIMEOUT_HEADER}: ${h}`;
        }
      }
    }
    if (deadline < ctx.deadline) ctx.deadline = deadline;
    else caller = undefined;
    if (ctx.deadline === Infinity) {
      // No deadline to forward: a caller's x-sidecar-timeout this route does not trust must not reach the upstream.
      if (!headerAllowed) headers.remove(TIMEOUT_HEADER);
      return next(req);
    }
    // The route timeout governs (the common case): the route's deadline queue, no timer of its own.
    const cancelTimer = ctx.deadline === ctx.startTime + ms ? routeDeadlines.add(req.cancel, ctx) : armTimeout(clock, req.cancel, ctx, ms, caller);
    return next(req).then(
      (res) => {
        cancelTimer();
        return res;
      },
      (err: unknown) => {
        cancelTimer();
        throw err;
      },
    );
  };
}

/**
 * The timer holds the request's cancellation only weakly, and nothing else of the request. A strong reference from
 * the long-lived timer list kept every in-flight request's objects (headers, handlers, promise chain) reachable from
 * old space, so young-generation GC copied and promoted them: scavenge pauses doubled under load. While the request
 * is in flight its cancellation is reachable anyway (from the upstream handler), so the weak reference never fails
 * when it matters.
 */
function armTimeout(clock: Clock, cancel: Cancellation, ctx: RequestContext, ms: number, limit: string | undefined): () => void {
  const ref = new WeakRef(cancel);
  return clock.setTimeout(() => ref.deref()?.abort(timeoutError(ctx, ms, limit)), Math.max(0, ctx.deadline - clock.now()));
}

/**
 * The in-flight requests of one route whose deadline is the route timeout. They share one timeout, so arrival order is
 * deadline order: a linked list in arrival order and one timer for its head replace a timer per request (Node's
 * setTimeout and clearTimeout per request were a measurable part of the hot path). The timer is re-armed lazily: when
 * the head finishes early its timer still fires once, finds the new head not yet due, and sets itself for it. It is
 * stopped when the queue empties, so an idle route holds no timer.
 */
class DeadlineQueue {
  #head: DeadlineEntry | undefined;
  #tail: DeadlineEntry | undefined;
  #timer: (() => void) | undefined;
  readonly #clock: Clock;
  readonly #ms: number;

  constructor(clock: Clock, ms: number) {
    this.#clock = clock;
    this.#ms = ms;
  }

  /** Tracks a request until its deadline; returns the function that stops tracking it. */
  add(cancel: Cancellation, ctx: RequestContext): () => void {
    const entry = new DeadlineEntry(cancel, ctx, ctx.startTime + this.#ms);
    const tail = this.#tail;
    if (tail === undefined) this.#head = entry;
    else {
      tail.next = entry;
      entry.prev = tail;
    }
    this.#tail = entry;
    if (this.#timer === undefined) this.#arm();
    return () => this.#remove(entry);
  }

  #remove(e: DeadlineEntry): void {
    if (e.removed) return;
    e.removed = true;
    const { prev, next } = e;
    if (prev === undefined) this.#head = next;
    else prev.next = next;
    if (next === undefined) this.#tail = prev;
    else next.prev = prev;
    e.prev = e.next = undefined;
    if (this.#head === undefined && this.#timer !== undefined) {
      this.#timer();
      this.#timer = undefined;
    }
  }

  #arm(): void {
    const head = this.#head;
    if (head === undefined) return;
    this.#timer = this.#clock.setTimeout(this.#fire, Math.max(0, head.deadline - this.#clock.now()));
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    const now = this.#clock.now();
    // Arrival order can lag start-time order by a tick (requests with a body start one tick late): an entry due behind
    // one that is not yet due waits for that one's timer, microseconds later; never early.
    for (let e = this.#head; e !== undefined && e.deadline <= now; e = this.#head) {
      this.#remove(e);
      e.cancel.deref()?.abort(timeoutError(e.ctx, this.#ms, undefined));
    }
    this.#arm();
  };
}

class DeadlineEntry {
  prev: DeadlineEntry | undefined;
  next: DeadlineEntry | undefined;
  removed = false;
  /** Weak for the same reason as armTimeout's reference; the context is plain data (ids, names, times). */
  readonly cancel: WeakRef<Cancellation>;
  readonly ctx: RequestContext;
  readonly deadline: number;

  constructor(cancel: Cancellation, ctx: RequestContext, deadline: number) {
    this.cancel = new WeakRef(cancel);
    this.ctx = ctx;
    this.deadline = deadline;
  }
}

function timeoutError(ctx: RequestContext, ms: number, caller: string | undefined): ProxyError {
  const where = ctx.endpoint ? `from ${ctx.endpoint}` : ctx.cluster ? `from cluster ${ctx.cluster}` : '';
  const what = caller === undefined
    ? `upstream response timeout after ${ms}ms (route timeout)`
    : `upstream response timeout after ${Math.round(ctx.deadline - ctx.startTime)}ms (caller deadline, ${caller})`;
  return new ProxyError('UT', `${what} waiting for response headers ${where}; attempt ${ctx.attempts}`.replace(/ ;/, ';'), {
    endpoint: ctx.endpoint || undefined,
  });
}
