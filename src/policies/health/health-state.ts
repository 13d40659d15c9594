// Active health checking: per-endpoint healthy/unhealthy state machine, probe interval jitter and panic routing.

export type HealthStatus = 'unknown' | 'healthy' | 'unhealthy';

export interface HealthCheckConfig {
  /** Consecutive successful probes to go unhealthy -> healthy (Envoy healthy_threshold, default 2). */
  readonly healthyThreshold?: number;
  /** Consecutive failed probes to go healthy -> unhealthy (Envoy unhealthy_threshold, default 3). */
  readonly unhealthyThreshold?: number;
  /**
   * State before any probe has answered (default 'unknown').
   * - 'unknown': routable, optimistic; one success confirms 'healthy', unhealthyThreshold failures in a row make
   *   it 'unhealthy'. Suits endpoints that the control plane (e.g. Kubernetes readiness) already vouched for.
   * - 'unhealthy': Envoy's behaviour for hosts added under active health checking: no traffic until a probe
   *   passes. The first success makes it healthy at once (Envoy does the same, to speed up start-up).
   * - 'healthy': as if already confirmed.
   */
  readonly initialState?: HealthStatus;
}

export const DEFAULT_HEALTH_CHECK = { healthyThreshold: 2, unhealthyThreshold: 3, initialState: 'unknown' } as const;

export interface HealthTransition {
  readonly previous: HealthStatus;
  readonly state: HealthStatus;
  readonly changed: boolean;
}

/** One endpoint's active health state. Feed it probe results; read `state` / `routable`. */
export class HealthState {
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  private current: HealthStatus;
  private successes = 0;
  private failures = 0;
  private checked = false;

  constructor(config: HealthCheckConfig = {}) {
    this.healthyThreshold = threshold('healthyThreshold', config.healthyThreshold ?? DEFAULT_HEALTH_CHECK.healthyThreshold);
    this.unhealthyThreshold = threshold('unhealthyThreshold', config.unhealthyThreshold ?? DEFAULT_HEALTH_CHECK.unhealthyThreshold);
    this.current = config.initialState ?? DEFAULT_HEALTH_CHECK.initialState;
  }

  get state(): HealthStatus {
    return this.current;
  }

  /** Whether the load balancer may pick this endpoint: 'unknown' counts as healthy. */
  get routable(): boolean {
    return this.current !== 'unhealthy';
  }

  /** Record one probe result and return the transition it caused (if any). */
  record(success: boolean): HealthTransition {
    const previous = this.current;
    const first = !this.checked;
    this.checked = true;
    if (success) {
      this.failures = 0;
      this.successes++;
      if (previous === 'unknown' || (previous === 'unhealthy' && (first || this.successes >= this.healthyThreshold))) {
        this.current = 'healthy';
      }
    } else {
      this.successes = 0;
      this.failures++;
      if (previous !== 'unhealthy' && this.failures >= this.unhealthyThreshold) this.current = 'unhealthy';
    }
    if (this.current !== previous) {
      this.successes = 0;
      this.failures = 0;
    }
    return { previous, state: this.current, changed: this.current !== previous };
  }
}

/**
 * Next probe delay: interval plus up to jitterRatio * interval of extra wait (Envoy interval_jitter_percent).
 * Jitter only ever lengthens the interval so probes never come faster than configured, and it keeps the probes
 * of many sidecars from marching in step against the same upstream.
 */
export function nextIntervalMs(intervalMs: number, jitterRatio: number, random: () => number): number {
  if (!(intervalMs > 0)) return 0;
  if (!(jitterRatio > 0)) return intervalMs;
  const r = random();
  const u = r >= 0 && r < 1 ? r : 0;
  return intervalMs + u * jitterRatio * intervalMs;
}

/** Envoy healthy_panic_threshold default. */
export const DEFAULT_PANIC_THRESHOLD_PERCENT = 50;

/**
 * Panic mode: when fewer than panicThresholdPercent of the endpoints are healthy, route to all of them. Sending
 * the whole load to the few survivors would likely overload them too; spreading it keeps some requests working
 * when health checking itself is what is broken. 0 disables panic; an empty cluster is never in panic.
 */
export function panic(healthyCount: number, total: number, panicThresholdPercent: number = DEFAULT_PANIC_THRESHOLD_PERCENT): boolean {
  if (!(total > 0) || !(panicThresholdPercent > 0)) return false;
  return (100 * healthyCount) / total < panicThresholdPercent;
}

function threshold(name: string, v: number): number {
  if (!(Number.isInteger(v) && v >= 1)) throw new RangeError(`${name} must be an integer >= 1, got ${v}`);
  return v;
}
