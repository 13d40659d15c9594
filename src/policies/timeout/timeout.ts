// Route timeout and caller deadline: the time allowed until the response head arrives. The effective deadline is the
// earlier of the route timeout and the caller's own (grpc-timeout always; x-sidecar-timeout from another sidecar, or
// from anyone when the route allows it).
// Exceeding it aborts the upstream attempt and answers 504 UT, naming which limit it was (UQ when the attempt was still
// waiting for a pooled connection).
import { systemClock, type Clock } from '../../core/clock.js';
import { ProxyError } from '../../core/errors.js';
import type { Cancellation } from '../../core/cancel.js';
import type { Layer, RequestContext } from '../../core/service.js';
import { GRPC_TIMEOUT_HEADER, parseGrpcTimeout, parseTimeoutHeader, TIMEOUT_HEADER } from './deadline.js';

export interface TimeoutOptions {
  /**
   * Honour a caller's x-sidecar-timeout request header (routes[].timeout_header_allowed): true from anyone, false
   * never, undefined (the default) only from another sidecar (RequestContext.fromSidecar).
   */
  readonly headerAllowed?: boolean | undefined;
}

export function timeoutLayer(ms: number, clock: Clock = systemClock, opts: TimeoutOptions = {}): Layer {
  const allowed = opts.headerAllowed;
  return (next) => (req) => {
    const ctx = req.context;
    const headers = req.headers;
    const headerAllowed = allowed ?? ctx.fromSidecar;
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
    const limit = caller;
    // A deadline already past (grpc-timeout: 0m) is answered here: nothing goes upstream for a caller that has gone.
    if (ctx.deadline <= clock.now()) return Promise.reject(timeoutError(clock, ctx, ms, limit));
    const cancelTimer = armTimeout(clock, req.cancel, ctx, ms, limit);
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
  return clock.setTimeout(() => ref.deref()?.abort(timeoutError(clock, ctx, ms, limit)), Math.max(0, ctx.deadline - clock.now()));
}

/**
 * The 504 for a deadline that ran out. An attempt still queued for a pooled connection never reached the upstream:
 * its answer says the pool was full (UQ), not that the upstream was slow (UT).
 */
function timeoutError(clock: Clock, ctx: RequestContext, ms: number, caller: string | undefined): ProxyError {
  const wait = ctx.poolWait;
  if (wait !== undefined) {
    const limit = caller === undefined ? `route timeout ${ms}ms` : `caller deadline, ${caller}`;
    const waited = ((clock.now() - wait.since) / 1000).toFixed(1);
    return new ProxyError('UQ', `${wait.describe()} for ${waited} s (endpoint ${wait.endpoint}, ${limit}); attempt ${ctx.attempts}`, {
      endpoint: wait.endpoint,
    });
  }
  const where = ctx.endpoint ? `from ${ctx.endpoint}` : ctx.cluster ? `from cluster ${ctx.cluster}` : '';
  const what = caller === undefined
    ? `upstream response timeout after ${ms}ms (route timeout)`
    : `upstream response timeout after ${Math.round(ctx.deadline - ctx.startTime)}ms (caller deadline, ${caller})`;
  return new ProxyError('UT', `${what} waiting for response headers ${where}; attempt ${ctx.attempts}`.replace(/ ;/, ';'), {
    endpoint: ctx.endpoint || undefined,
  });
}
