// Hedging: when an attempt has not produced a response head by the route's live p95 (or a fixed delay), send a
// second attempt to a different endpoint, answer with whichever head arrives first and cancel the other.
// Sits just outside the cluster service (inside retry), so each retry attempt may be hedged once.
import type { BalancedEndpoint } from '../../balancers/balancer.js';
import type { AttemptRequest } from '../../cluster/cluster.js';
import type { HedgeConfig } from '../../config/schema.js';
import { systemClock, type Clock } from '../../core/clock.js';
import type { HttpService, Layer, ProxyResponse } from '../../core/service.js';
import type { Counter } from '../../observability/metrics.js';
import type { WindowedHistogram } from '../latency/histogram.js';
import type { RetryBudget } from '../retry/budget.js';
import { discardBody } from '../../core/body.js';

export const HEDGE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
/** Samples the live histogram needs before its p95 is trusted. */
export const HEDGE_MIN_SAMPLES = 20;
/** Hedge delay while the histogram is warming up. */
export const HEDGE_FALLBACK_MS = 50;

/** Whether a request may be hedged: idempotent method and no request body. */
export function hedgeable(method: string, hasBody: boolean): boolean {
  return !hasBody && HEDGE_METHODS.has(method);
}

/** The delay before the hedge: the fixed duration, or the live p95 once there are enough samples. */
export function hedgeDelay(after: HedgeConfig['after'], histogram: Pick<WindowedHistogram, 'count' | 'quantile'>): number {
  if (after !== 'p95') return after;
  if (histogram.count < HEDGE_MIN_SAMPLES) return HEDGE_FALLBACK_MS;
  return histogram.quantile(0.95) ?? HEDGE_FALLBACK_MS;
}

export interface HedgeTarget {
  readonly name: string;
  readonly retryBudget: RetryBudget;
  readonly endpoints: readonly unknown[];
  endpointByAddress(address: string): BalancedEndpoint | undefined;
}

export interface HedgeMetrics {
  /** sidecar_hedges_total{cluster, outcome}. */
  readonly sent: Counter;
  readonly won: Counter;
  readonly lost: Counter;
  readonly budget: Counter;
}

export interface HedgeDeps {
  /** Time to response head per route; shared by the route's clusters. */
  readonly histogram: WindowedHistogram;
  /** Deposit into the retry budget per request (when no retry layer does it). */
  readonly deposit: boolean;
  readonly clock?: Clock;
}

export function hedgeLayer(cfg: HedgeConfig | undefined, target: HedgeTarget, metrics: HedgeMetrics, deps: HedgeDeps): Layer {
  if (!cfg) return (next) => next;
  const clock = deps.clock ?? systemClock;
  const histogram = deps.histogram;
  return (next: HttpService): HttpService =>
    (req: AttemptRequest): Promise<ProxyResponse> => {
      const start = clock.now();
      const budget = target.retryBudget;
      if (deps.deposit) budget.deposit();
      const record = (res: ProxyResponse): ProxyResponse => {
        histogram.record(clock.now() - start);
        return res;
      };
      if (!hedgeable(req.method, req.body !== null) || target.endpoints.length < 2) return next(req).then(record);

      const ctx = req.context;
      return new Promise<ProxyResponse>((resolve, reject) => {
        const cancels = [req.cancel.child()];
        const endpoints: string[] = [];
        const done = [false, false];
        let settled = false;
        let hedged = false;
        let lastError: unknown;

        const launch = (i: number, avoid: BalancedEndpoint | undefined): void => {
          const attemptReq: AttemptRequest = { ...req, cancel: cancels[i]!, avoid, hedge: i === 1 };
          const p = next(attemptReq);
          // The cluster service sets ctx.endpoint before its first await.
          endpoints[i] = ctx.endpoint;
          p.then(
            (res) => {
              done[i] = true;
              if (settled) {
                discardBody(res.body);
                return;
              }
              settled = true;
              stopTimer();
              const other = 1 - i;
              if (hedged && !done[other]) cancels[other]!.abort(new Error('hedge: another attempt answered first'));
              if (hedged) (i === 1 ? metrics.won : metrics.lost).inc();
              ctx.endpoint = endpoints[i]!;
              resolve(record(res));
            },
            (err: unknown) => {
              done[i] = true;
              if (settled) return;
              lastError = err;
              // Wait for the other attempt while it may still answer.
              if (hedged && !done[1 - i]) return;
              settled = true;
              stopTimer();
              ctx.endpoint = endpoints[i]!;
              reject(lastError);
            },
          );
        };

        launch(0, req.avoid);
        const stopTimer = clock.setTimeout(() => {
          if (settled || req.cancel.aborted || done[0]) return;
          if (!budget.tryWithdraw()) {
            metrics.budget.inc();
            return;
          }
          hedged = true;
          metrics.sent.inc();
          cancels.push(req.cancel.child());
          launch(1, endpoints[0] ? target.endpointByAddress(endpoints[0]) : undefined);
        }, hedgeDelay(cfg.after, histogram));
      });
    };
}
