// Retry layer: sends a request again when an attempt fails in a way retry_on names and replaying it is safe.
// Commit-aware (shouldRetry), budgeted per cluster (RetryBudget), capped by the cluster's max_retries breaker,
// with full-jitter backoff, Retry-After, per-try timeouts and a different endpoint for each retry.
import type { BalancedEndpoint } from '../../balancers/balancer.js';
import type { RetryPolicyConfig } from '../../config/schema.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { ProxyError } from '../../core/errors.js';
import { ERROR_HEADER, FLAG_HEADER } from '../../core/flags.js';
import type { HttpService, Layer, ProxyRequest, ProxyResponse } from '../../core/service.js';
import type { Counter } from '../../observability/metrics.js';
import type { CircuitBreaker } from '../circuit-breaker/breaker.js';
import { backoffDelay, parseRetryAfter } from './backoff.js';
import type { RetryBudget } from './budget.js';
import { noteDecision } from '../../observability/request-debug.js';
import { DEFAULT_IDEMPOTENT_METHODS, grpcRetryCodes, shouldRetry, type AttemptOutcome, type RetryClassifierConfig, type RetryOn } from './policy.js';
import { ReplayableBody } from './replay-body.js';
import { discardBody } from '../../core/body.js';

/** What the retry layer needs from the cluster behind it. */
export interface RetryTarget {
  readonly name: string;
  readonly retryBudget: RetryBudget;
  readonly breaker: CircuitBreaker;
  /** The endpoint with this address, to avoid it on the next attempt. */
  endpointByAddress(address: string): BalancedEndpoint | undefined;
  /** Counts and builds the 503 UO error for a breaker threshold. */
  overflow(threshold: 'max_retries', limit: number): ProxyError;
}

export interface RetryMetrics {
  /** sidecar_retries_total{cluster, reason}: resolved on the (cold) retry path. */
  retry(reason: string): Counter;
  /** sidecar_retry_budget_exhausted_total{cluster}. */
  readonly budgetExhausted: Counter;
}

export interface RetryDeps {
  readonly clock?: Clock;
  readonly random?: () => number;
  /** Wall-clock epoch ms, for Retry-After dates. */
  readonly wallNow?: () => number;
}

/** Envoy caps a server's Retry-After hint; we cap it at 10x the backoff max_interval (and the route deadline). */
export const RETRY_AFTER_CAP_FACTOR = 10;

export function retryLayer(cfg: RetryPolicyConfig | undefined, target: RetryTarget, metrics: RetryMetrics, deps: RetryDeps = {}): Layer {
  if (!cfg || cfg.max_retries <= 0) return (next) => next;
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? Math.random;
  const wallNow = deps.wallNow ?? Date.now;
  const retryOn = new Set<RetryOn>(cfg.retry_on);
  const grpcCodes = grpcRetryCodes(cfg.retry_on);
  const statusCodes = new Set(cfg.retriable_status_codes);
  const maxAttempts = 1 + cfg.max_retries;
  const base = cfg.backoff.base_interval;
  const max = cfg.backoff.max_interval;
  const perTry = cfg.per_try_timeout ?? 0;

  return (next: HttpService): HttpService =>
    async (req: ProxyRequest): Promise<ProxyResponse> => {
      const ctx = req.context;
      const budget = target.retryBudget;
      budget.deposit();
      const classifier: RetryClassifierConfig = {
        retryOn,
        retriableStatusCodes: statusCodes,
        retriableHeaders: cfg.retriable_headers,
        method: req.method,
        idempotentMethods: DEFAULT_IDEMPOTENT_METHODS,
        allowNonIdempotent: cfg.allow_non_idempotent,
        hasIdempotencyKey: req.headers.get('idempotency-key') !== undefined,
        idempotencyKeyAllowed: cfg.idempotency_key_header_allowed,
        grpcCodes,
      };
      const replay = req.body === null ? undefined : new ReplayableBody(req.body, cfg.max_replay_body);
      let avoid: BalancedEndpoint | undefined;
      let retryHeld = false;
      /** The max_retries breaker stopped the retry: the answer carries flag UO. */
      let breakerOpen = false;
      const releaseRetry = (): void => {
        if (retryHeld) target.breaker.releaseRetry();
        retryHeld = false;
      };

      let body = replay ? replay.next() : undefined;
      for (let attempt = 1; ; attempt++) {
        const cancel = req.cancel.child();
        const attemptReq = {
          method: req.method,
          authority: req.authority,
          path: req.path,
          scheme: req.scheme,
          headers: req.headers,
          body: body ?? null,
          contentLength: req.contentLength,
          trailers: req.trailers,
          cancel,
          context: ctx,
          avoid,
        };
        let perTryError: ProxyError | undefined;
        let stopTimer: (() => void) | undefined;
        if (perTry > 0 && clock.now() + perTry < ctx.deadline) {
          stopTimer = clock.setTimeout(() => {
            perTryError = new ProxyError(
              'UT',
              `per-try timeout after ${perTry}ms waiting for response headers from ${ctx.endpoint || `cluster ${target.name}`}`,
              { endpoint: ctx.endpoint || undefined },
            );
            cancel.abort(perTryError);
          }, perTry);
        }

        let res: ProxyResponse | undefined;
        let failure: unknown;
        try {
          res = await next(attemptReq);
        } catch (err) {
          failure = err;
        } finally {
          stopTimer?.();
          releaseRetry();
        }
        // The whole request was cancelled (downstream gone, route timeout): nothing to retry.
        if (req.cancel.aborted) {
          discardBody(res?.body);
          throw req.cancel.reason ?? failure;
        }
        if (res !== undefined && perTryError === undefined) {
          // A response head arrived: it is the answer unless retry_on says otherwise.
          const r = res;
          const outcome: AttemptOutcome = { kind: 'response', status: r.status, headers: (n) => r.headers.get(n) };
          const decision = shouldRetry(outcome, classifier);
          if (!decision.retry) {
            if (ctx.trace && r.status >= 500) noteDecision(ctx, `attempt ${attempt} answered ${r.status}: not retried (${decision.reason})`);
            replay?.release();
            return res;
          }
          const stop = mayRetry(attempt, decision.reason);
          if (ctx.trace) noteDecision(ctx, retryNote(attempt, `answered ${r.status}`, decision.reason, stop));
          if (stop !== undefined) {
            replay?.release();
            return giveUp(res, attempt, stop);
          }
          const hinted = retryAfter(r);
          discardBody(res.body);
          await pause(attempt, hinted);
          continue;
        }
        if (res !== undefined) discardBody(res.body);
        const err = perTryError ?? failure;
        const outcome = outcomeOf(err, perTryError !== undefined);
        const decision = outcome === undefined ? undefined : shouldRetry(outcome, classifier);
        if (!decision?.retry) {
          if (ctx.trace) noteDecision(ctx, `attempt ${attempt} failed: not retried (${decision?.reason ?? 'the failure is not one a retry can fix'})`);
          throw finalError(err, attempt, attempt > 1 ? '' : undefined);
        }
        const stop = mayRetry(attempt, decision.reason);
        if (ctx.trace) noteDecision(ctx, retryNote(attempt, 'failed', decision.reason, stop));
        if (stop !== undefined) throw finalError(err, attempt, stop);
        await pause(attempt, undefined);
      }

      /**
       * Checks everything that can stop a retry; on success the retry is counted, the breaker's retry slot held and
       * the failed endpoint remembered. Returns why not otherwise ('' = attempts used up).
       */
      function mayRetry(attempt: number, reason: string): string | undefined {
        if (attempt >= maxAttempts) return '';
        if (ctx.deadline - clock.now() <= 0) return 'no time left before the deadline';
        const notReplayable = `request body over max_replay_body (${cfg!.max_replay_body} bytes) could not be kept for a retry`;
        if (replay && !replay.replayable) return notReplayable;
        // The breaker first: a retry it refuses must not spend the budget.
        if (!target.breaker.tryAcquireRetry()) {
          breakerOpen = true;
          return target.overflow('max_retries', target.breaker.retryLimit()).message;
        }
        if (!budget.tryWithdraw()) {
          target.breaker.releaseRetry();
          metrics.budgetExhausted.inc();
          return 'retry budget exhausted';
        }
        if (replay) {
          // Only now is the failed attempt's body stream detached; the buffer may have overflowed since the check.
          body = replay.next();
          if (body === undefined) {
            target.breaker.releaseRetry();
            return notReplayable;
          }
        }
        retryHeld = true;
        metrics.retry(reason).inc();
        avoid = ctx.endpoint ? target.endpointByAddress(ctx.endpoint) : undefined;
        return undefined;
      }

      function retryAfter(res: ProxyResponse): number | undefined {
        const v = res.headers.get('retry-after');
        if (v === undefined) return undefined;
        const ms = parseRetryAfter(v, wallNow());
        return ms === undefined ? undefined : Math.min(ms, max * RETRY_AFTER_CAP_FACTOR);
      }

      /** Backoff (or the server's Retry-After) before the next attempt, never past the deadline. */
      function pause(attempt: number, hinted: number | undefined): Promise<void> {
        const wanted = hinted ?? backoffDelay(attempt, base, max, random);
        const delay = Math.min(wanted, Math.max(0, ctx.deadline - clock.now()));
        if (!(delay > 0)) return Promise.resolve();
        return new Promise<void>((resolve, reject) => {
          let off: () => void = () => {};
          const cancelTimer = clock.setTimeout(() => {
            off();
            resolve();
          }, delay);
          off = req.cancel.onAbort((reason) => {
            cancelTimer();
            releaseRetry();
            reject(reason);
          });
        });
      }

      /** The last response, marked: URX once retries were made, and why retrying stopped. */
      function giveUp(res: ProxyResponse, attempt: number, stop: string): ProxyResponse {
        const note = describeStop(`upstream answered ${res.status}`, attempt, stop);
        if (attempt > 1 || stop !== '') {
          const flag = breakerOpen ? 'UO' : attempt > 1 ? 'URX' : undefined;
          if (flag) {
            ctx.flag = flag;
            res.headers.set(FLAG_HEADER, flag);
          }
          ctx.error = note;
          res.headers.set(ERROR_HEADER, note.replace(/[^\x20-\x7e]/g, '?').slice(0, 1000));
        }
        return res;
      }

      function finalError(err: unknown, attempt: number, stop: string | undefined): unknown {
        if (!(err instanceof ProxyError)) return err;
        if (stop === undefined) return err;
        // The outcome and cause code of the last attempt travel on, for the access log.
        const typed = { endpoint: err.endpoint, cause: err, outcome: err.outcome, code: err.code, attempts: attempt };
        if (breakerOpen) return new ProxyError('UO', describeStop(err.message, attempt, stop), { ...typed, status: 503 });
        const flag = attempt > 1 && isRetriableFlag(err) ? 'URX' : err.flag;
        return new ProxyError(flag, describeStop(err.message, attempt, stop), { ...typed, status: err.status });
      }

      function describeStop(what: string, attempt: number, stop: string): string {
        return `${what}; attempt ${attempt}/${maxAttempts}${stop ? `; ${stop}` : ''}`;
      }
    };
}

function isRetriableFlag(err: ProxyError): boolean {
  return err.flag === 'UF' || err.flag === 'UC' || err.flag === 'UR' || err.flag === 'UT' || err.flag === 'UPE';
}

/**
 * How far a failed attempt got, from the typed fields of the error it ended with (never its message). undefined: a
 * failure retrying cannot help (no endpoint, breaker overflow, bad request body, internal error).
 */
export function outcomeOf(err: unknown, perTryTimeout: boolean): AttemptOutcome | undefined {
  if (perTryTimeout) return { kind: 'possibly-accepted', reason: 'timeout' };
  if (!(err instanceof ProxyError)) return undefined;
  switch (err.outcome) {
    case 'not-sent':
      return { kind: 'not-sent', cause: err.code === 'refused-stream' ? 'refused-stream' : 'connect-failure' };
    case 'possibly-accepted':
    case 'response-started':
      // The upstream may have acted on it (or certainly saw it): only a replay the method or the operator makes safe.
      return { kind: 'possibly-accepted', reason: err.code === 'timeout' ? 'timeout' : 'reset' };
    default:
      return undefined;
  }
}

/** A retry decision in plain words for the request's story (admin /debug/requests). */
function retryNote(attempt: number, what: string, reason: string, stop: string | undefined): string {
  if (stop === undefined) return `attempt ${attempt} ${what}: retry_on matched (${reason}), retrying`;
  return `attempt ${attempt} ${what}: retry_on matched (${reason}) but not retried: ${stop === '' ? 'attempts used up' : stop}`;
}
