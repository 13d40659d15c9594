// Adaptive concurrency layer: admits a request only while the route's in-flight count is under a limit that adapts
// to upstream latency (AIMD or Gradient2); over the limit the request is shed with 503 LS without reaching upstream.
import type { AdaptiveConcurrencyConfig } from '../../config/schema.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { ProxyError, isProxyError } from '../../core/errors.js';
import type { HttpService, Layer, ProxyRequest, ProxyResponse } from '../../core/service.js';
import type { Counter } from '../../observability/metrics.js';
import { AimdLimiter } from './aimd.js';
import { GradientLimiter } from './gradient.js';
import type { ConcurrencyLimiter, LimiterOutcome } from './limiter.js';
import { whenBodyDone } from '../../core/body.js';

export function makeLimiter(cfg: AdaptiveConcurrencyConfig): ConcurrencyLimiter {
  const common = { initialLimit: cfg.initial_limit, minLimit: cfg.min_limit, maxLimit: cfg.max_limit };
  return cfg.algorithm === 'aimd' ? new AimdLimiter({ ...common, latencyThresholdMs: cfg.latency_threshold }) : new GradientLimiter(common);
}

/** How a response head tells the limiter about upstream capacity: 5xx and 429 are overload signals. */
export function outcomeOfStatus(status: number): LimiterOutcome {
  return status >= 500 || status === 429 ? 'dropped' : 'success';
}

/** How a failure tells the limiter about upstream capacity: a client that went away says nothing. */
export function outcomeOfError(err: unknown): LimiterOutcome {
  if (!isProxyError(err)) return 'ignore';
  switch (err.flag) {
    case 'DC':
    case 'TL':
    case 'DPE':
    case 'FI':
    case 'LS':
      return 'ignore';
    default:
      return 'dropped';
  }
}

export interface AdaptiveConcurrencyDeps {
  readonly limiter: ConcurrencyLimiter;
  /** sidecar_adaptive_concurrency_shed_total{listener, route}. */
  readonly shed: Counter;
  readonly route: string;
  readonly clock?: Clock;
}

export function adaptiveConcurrencyLayer(cfg: AdaptiveConcurrencyConfig | undefined, deps: AdaptiveConcurrencyDeps): Layer {
  if (!cfg) return (next) => next;
  const { limiter, shed, route } = deps;
  const clock = deps.clock ?? systemClock;
  return (next: HttpService): HttpService =>
    async (req: ProxyRequest): Promise<ProxyResponse> => {
      if (!limiter.tryAcquire()) {
        shed.inc();
        throw new ProxyError('LS', `adaptive concurrency limit (${limiter.limit}) reached on route ${route}`, { status: 503 });
      }
      const start = clock.now();
      let res: ProxyResponse;
      try {
        res = await next(req);
      } catch (err) {
        limiter.release(clock.now() - start, req.cancel.aborted && !isTimeout(req.cancel.reason) ? 'ignore' : outcomeOfError(err));
        throw err;
      }
      const latency = clock.now() - start;
      const outcome = outcomeOfStatus(res.status);
      // The slot is held until the body is done, so the limit bounds what the upstream is actually serving.
      whenBodyDone(res.body, () => limiter.release(latency, outcome));
      return res;
    };
}

function isTimeout(reason: Error | undefined): boolean {
  // A deadline spent waiting for a pooled connection is as much a sign of overload as a slow upstream.
  return isProxyError(reason) && (reason.flag === 'UT' || reason.flag === 'UQ');
}
