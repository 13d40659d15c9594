// A cluster: its endpoints, its balancer, and the terminal service that sends one attempt to a picked endpoint.
import type { Transport } from '../upstream/registry.js';
import { createBalancer, hashKey, type BalancedEndpoint, type LoadBalancer } from '../balancers/index.js';
import type { ClusterConfig } from '../config/schema.js';
import { systemClock } from '../core/clock.js';
import { isProxyError, ProxyError } from '../core/errors.js';
import type { HttpService, ProxyRequest, ProxyResponse } from '../core/service.js';
import type { Counter, Gauge } from '../observability/metrics.js';
import type { SidecarMetrics } from '../observability/catalogue.js';
import { CircuitBreaker, type BreakerThreshold } from '../policies/circuit-breaker/breaker.js';
import { HealthState, panic, type HealthStatus } from '../policies/health/health-state.js';
import { OutlierDetector, type OutlierEvent, type OutlierOutcome } from '../policies/outlier/outlier.js';
import { HealthChecker } from './health-checker.js';
import { RetryBudget } from '../policies/retry/budget.js';
import type { EndpointStats, UpstreamLease, UpstreamRegistry } from '../upstream/registry.js';
import type { Upstream } from '../upstream/upstream.js';
import { whenBodyDone } from '../core/body.js';

export class Endpoint implements BalancedEndpoint {
  readonly address: string;
  readonly weight: number;
  readonly upstream: Upstream;
  readonly stats: EndpointStats;
  /** Position in the cluster's endpoint list (outlier and health state are kept by index). */
  readonly index: number;
  readonly #lease: UpstreamLease;
  /** Set only for clusters with outlier detection or health checks; otherwise every endpoint is available. */
  #gate: EndpointGate | undefined;

  constructor(address: string, weight: number, lease: UpstreamLease, index = 0) {
    this.address = address;
    this.weight = weight;
    this.index = index;
    this.#lease = lease;
    this.upstream = lease.upstream;
    this.stats = lease.stats;
  }

  get active(): number {
    return this.stats.active;
  }

  get available(): boolean {
    const g = this.#gate;
    return g === undefined || g.panic || g.routable[this.index] === 1;
  }

  /** @internal Cluster wiring. */
  setGate(gate: EndpointGate): void {
    this.#gate = gate;
  }

  release(): void {
    this.#lease.release();
  }
}

/**
 * Routability of a guarded cluster's endpoints, recomputed only when a health or ejection state changes:
 * `routable[i]` is 1 when endpoint i is neither unhealthy nor ejected; `panic` makes every endpoint routable.
 */
export interface EndpointGate {
  readonly routable: Uint8Array;
  panic: boolean;
}

/** What /clusters shows for one endpoint's health and ejection state. */
export interface EndpointStatus {
  readonly health: HealthStatus;
  readonly ejected: boolean;
  /** Wall-clock end of the current ejection, or undefined. */
  readonly ejectedUntil: Date | undefined;
  readonly ejections: number;
}

/** One attempt of a request as the retry layer sends it: its own Cancellation and an endpoint to steer clear of. */
export interface AttemptRequest extends ProxyRequest {
  /** The endpoint a previous attempt failed on; the balancer picks another one when it can. */
  readonly avoid?: BalancedEndpoint | undefined;
}

/** Failures of the attempt itself rather than an answer: connect failure, connection closed, reset, protocol error. */
const LOCAL_ORIGIN_FLAGS: ReadonlySet<string> = new Set(['UF', 'UC', 'UR', 'UPE']);


export class Cluster {
  readonly name: string;
  readonly config: ClusterConfig;
  readonly endpoints: readonly Endpoint[];
  /** Retries to this cluster, across all its routes, are withdrawn from this budget. */
  readonly retryBudget: RetryBudget;
  /** Hard concurrency caps (requests, pending requests, retries); connections cap the pools. */
  readonly breaker: CircuitBreaker;
  #metrics: SidecarMetrics | undefined;
  readonly #poolConnections: number;
  /** HTTP/1.1 pools hold one request per connection; h2c multiplexes, so nothing waits for a connection there. */
  readonly #http1: boolean;
  readonly #balancer: LoadBalancer<Endpoint>;
  readonly #hashOf: ((req: ProxyRequest) => number | undefined) | undefined;
  /** Outlier detection / health checking state; all undefined for a cluster with neither block. */
  readonly #gate: EndpointGate | undefined;
  #gateDirty = false;
  readonly #outlier: OutlierDetector | undefined;
  readonly #ejectionTimers = new Set<NodeJS.Timeout>();
  readonly #ejections: number[] = [];
  #ejectedNow = 0;
  readonly #health: HealthState[] | undefined;
  readonly #checker: HealthChecker | undefined;
  readonly #panicCounter: Counter | undefined;
  readonly #ejectedGauge: Gauge | undefined;
  #released = false;
  readonly #transport: Transport | undefined;
  /** Sends one attempt of the request to an endpoint the balancer picks. */
  readonly service: HttpService;

  /** `metrics` (given by the snapshot) feeds the outlier, health-check and panic metrics. */
  constructor(config: ClusterConfig, registry: UpstreamRegistry, metrics?: SidecarMetrics) {
    this.name = config.name;
    this.#metrics = metrics;
    this.config = config;
    const budget = config.retry_budget; // defaults come from the schema (the config loader fills them in)
    this.retryBudget = new RetryBudget(
      { retryRatio: budget.retry_ratio, minRetriesPerSecond: budget.min_retries_per_second, ttlMs: budget.ttl },
      systemClock,
    );
    const cb = config.circuit_breakers;
    this.breaker = new CircuitBreaker({
      maxConnections: cb.max_connections,
      maxPendingRequests: cb.max_pending_requests,
      maxRequests: cb.max_requests,
      maxRetries: cb.max_retries,
    });
    // circuit_breakers.max_connections is enforced by the pools: each endpoint's pool gets at most that many.
    const poolConnections = Math.min(config.pool.max_connections, cb.max_connections);
    this.#poolConnections = poolConnections;
    this.#http1 = config.protocol === 'http1';
    const transport = config.tls ? registry.tlsTransport(config.name, config.tls, config.protocol) : undefined;
    this.#transport = transport;
    this.endpoints = config.endpoints.map((e, index) => {
      const address = typeof e === 'string' ? e : e.address;
      const weight = typeof e === 'string' ? 1 : e.weight;
      const lease = registry.acquire(config.protocol, {
        address,
        connectTimeout: config.connect_timeout,
        maxConnections: poolConnections,
        keepAliveTimeout: config.pool.keep_alive_timeout,
        maxRequestsPerConnection: config.pool.max_requests_per_connection,
        streamIdleTimeout: config.stream_idle_timeout,
        maxConcurrentStreams: config.pool.max_concurrent_streams,
        maxSharePerDownstream: config.pool.max_share_per_downstream,
        reclaimStalledAfter: config.pool.reclaim_stalled_after,
        reclaimUploadMinRate: config.pool.reclaim_upload_min_rate,
      }, config.name, transport);
      return new Endpoint(address, weight, lease, index);
    });
    this.#balancer = createBalancer(config.lb.policy, this.endpoints, { ringSize: config.lb.ring_size });
    this.#hashOf = config.lb.policy === 'ring_hash' && config.lb.hash_on ? hashFunction(config.lb.hash_on) : undefined;
    this.service = (req) => this.#send(req);

    const od = config.outlier_detection;
    const hc = config.health_check;
    if (od || hc) {
      const n = this.endpoints.length;
      const gate: EndpointGate = { routable: new Uint8Array(n).fill(1), panic: false };
      this.#gate = gate;
      for (const e of this.endpoints) e.setGate(gate);
      this.#panicCounter = metrics?.clusterPanic.get({ cluster: this.name });
      if (od) {
        this.#outlier = new OutlierDetector(
          {
            consecutive5xx: od.consecutive_5xx,
            consecutiveGatewayFailure: od.consecutive_gateway_failure,
            intervalMs: od.interval,
            baseEjectionTimeMs: od.base_ejection_time,
            maxEjectionTimeMs: od.max_ejection_time,
            maxEjectionPercent: od.max_ejection_percent,
            alwaysEjectOneHost: od.always_eject_one,
          },
          systemClock,
          n,
        );
        for (let i = 0; i < n; i++) this.#ejections.push(0);
        this.#ejectedGauge = metrics?.outlierEjected.get({ cluster: this.name });
        this.#ejectedGauge?.set(0);
        this.#outlier.on((ev) => this.#onOutlierEvent(ev));
      }
      if (hc) {
        const health = this.endpoints.map(() => new HealthState({ healthyThreshold: hc.healthy_threshold, unhealthyThreshold: hc.unhealthy_threshold }));
        this.#health = health;
        const checks = metrics
          ? { success: metrics.healthChecks.get({ cluster: this.name, result: 'success' }), failure: metrics.healthChecks.get({ cluster: this.name, result: 'failure' }) }
          : undefined;
        const healthy = metrics ? this.endpoints.map((e) => metrics.endpointHealthy.get({ cluster: this.name, endpoint: e.address })) : undefined;
        healthy?.forEach((g) => g.set(1)); // 'unknown' is routable until probes say otherwise
        this.#checker = new HealthChecker(
          this.endpoints.map((e) => e.address),
          {
            path: hc.path,
            intervalMs: hc.interval,
            jitterRatio: hc.interval_jitter / 100,
            timeoutMs: hc.timeout,
            expectedStatuses: hc.expected_statuses,
            host: hc.host,
          },
          (i, ok) => {
            (ok ? checks?.success : checks?.failure)?.inc();
            const t = health[i]!.record(ok);
            if (t.changed) {
              healthy?.[i]?.set(health[i]!.routable ? 1 : 0);
              this.#gateDirty = true;
            }
          },
          transport?.connector ?? registry.connector,
        );
        this.#checker.start();
      }
    }
  }

  /** Picks an endpoint for the request; `avoid` (a failed attempt's endpoint) is skipped when another is available. */
  pick(req: ProxyRequest, avoid?: BalancedEndpoint): Endpoint | undefined {
    const gate = this.#gate;
    if (gate !== undefined) {
      if (this.#gateDirty) this.#refreshGate(gate);
      if (gate.panic) this.#panicCounter?.inc();
    }
    return this.#balancer.pick({ hash: this.#hashOf?.(req), avoid });
  }

  /** Whether the cluster is routing to all endpoints because too few are healthy and not ejected. */
  get panic(): boolean {
    const gate = this.#gate;
    if (gate === undefined) return false;
    if (this.#gateDirty) this.#refreshGate(gate);
    return gate.panic;
  }

  /** Health and ejection state of endpoint i, for /clusters. */
  endpointStatus(i: number): EndpointStatus {
    const until = this.#outlier?.ejectedUntil(i);
    return {
      health: this.#health?.[i]?.state ?? 'unknown',
      ejected: until !== undefined,
      ejectedUntil: until === undefined ? undefined : new Date(Date.now() + (until - systemClock.now())),
      ejections: this.#ejections[i] ?? 0,
    };
  }

  #refreshGate(gate: EndpointGate): void {
    const health = this.#health;
    const outlier = this.#outlier;
    const n = gate.routable.length;
    let up = 0;
    for (let i = 0; i < n; i++) {
      const ok = (health === undefined || health[i]!.routable) && !(outlier !== undefined && outlier.isEjected(i));
      gate.routable[i] = ok ? 1 : 0;
      if (ok) up++;
    }
    // isEjected() may have emitted unejects that set the flag again; the loop above already saw them.
    this.#gateDirty = false;
    gate.panic = panic(up, n, this.config.panic_threshold);
  }

  #onOutlierEvent(ev: OutlierEvent): void {
    if (ev.type === 'eject') {
      this.#ejections[ev.endpoint] = (this.#ejections[ev.endpoint] ?? 0) + 1;
      this.#ejectedNow++;
      // A released (retired) cluster keeps its state but no longer writes the gauge its successor owns.
      if (!this.#released) this.#ejectedGauge?.set(this.#ejectedNow);
      this.#metrics?.outlierEjections.get({ cluster: this.name, reason: ev.reason }).inc();
      this.#gateDirty = true;
      if (!this.#released) {
        // Bring it back on time even when no request comes to notice (ejections also expire lazily on reads).
        const t = setTimeout(() => {
          this.#ejectionTimers.delete(t);
          this.#outlier?.tick();
        }, ev.durationMs + 1);
        t.unref();
        this.#ejectionTimers.add(t);
      }
    } else if (ev.type === 'uneject') {
      this.#ejectedNow--;
      if (!this.#released) this.#ejectedGauge?.set(this.#ejectedNow);
      this.#gateDirty = true;
    }
  }

  #recordOutcome(ep: Endpoint, outcome: OutlierOutcome): void {
    this.#outlier!.record(ep.index, outcome);
  }

  /** The endpoint of this cluster with that address, if any (the retry layer knows a failed attempt by ctx.endpoint). */
  endpointByAddress(address: string): Endpoint | undefined {
    for (const e of this.endpoints) if (e.address === address) return e;
    return undefined;
  }

  /** Metrics for breaker overflows; called by every route that uses the cluster (idempotent). */
  bindMetrics(metrics: SidecarMetrics): void {
    this.#metrics = metrics;
  }

  /** Counts a breaker rejection and builds the 503 UO answer naming the threshold and the cluster. */
  overflow(threshold: BreakerThreshold, limit: number): ProxyError {
    this.#metrics?.circuitBreakerOpen.get({ cluster: this.name, threshold }).inc();
    return new ProxyError('UO', `circuit breaker ${threshold} (${limit}) reached on cluster ${this.name}`, { status: 503 });
  }

  async #send(req: AttemptRequest): Promise<ProxyResponse> {
    const ep = this.pick(req, req.avoid);
    if (!ep) throw new ProxyError('UH', `no healthy endpoint in cluster ${this.name}`);
    const breaker = this.breaker;
    if (!breaker.tryAcquireRequest()) throw this.overflow('max_requests', breaker.maxRequests);
    // An HTTP/1.1 request is pending when every pooled connection of its endpoint is busy: it waits in the pool's
    // queue, and counts as pending until its response head arrives (an approximation: the pool does not say when
    // it hands the request a connection, and pools are not pipelined, so a busy connection holds one request).
    const stats = ep.stats;
    let pending = false;
    if (this.#http1 && stats.active >= this.#poolConnections) {
      if (!breaker.tryAcquirePending()) {
        breaker.releaseRequest();
        throw this.overflow('max_pending_requests', breaker.maxPendingRequests);
      }
      pending = true;
    }
    const ctx = req.context;
    ctx.endpoint = ep.address;
    ctx.attempts++;
    stats.active++;
    stats.requests++;
    let res: ProxyResponse;
    try {
      res = await ep.upstream.request(req, req.cancel);
    } catch (err) {
      if (this.#outlier !== undefined && isProxyError(err) && LOCAL_ORIGIN_FLAGS.has(err.flag)) this.#recordOutcome(ep, 'local-origin-failure');
      stats.active--;
      // A client that went away says nothing about the endpoint (a timeout does); nor does a fairness refusal.
      const reason = req.cancel.reason;
      const unfair = isProxyError(err) && err.flag === 'UO';
      if (unfair) this.#metrics?.circuitBreakerOpen.get({ cluster: this.name, threshold: 'max_share_per_downstream' }).inc();
      else if (!(isProxyError(reason) && (reason.flag === 'DC' || reason.flag === 'LR'))) stats.failures++;
      if (pending) breaker.releasePending();
      breaker.releaseRequest();
      throw err;
    }
    if (pending) breaker.releasePending();
    if (res.status >= 500) stats.failures++;
    if (this.#outlier !== undefined) {
      const s = res.status;
      this.#recordOutcome(ep, s < 500 ? 'success' : s >= 502 && s <= 504 ? 'gateway-error' : '5xx');
    }
    // The request holds its slot until the body is done; a whole (already complete) body frees it now.
    whenBodyDone(res.body, () => {
      stats.active--;
      breaker.releaseRequest();
    });
    return res;
  }

  release(): void {
    this.#released = true;
    this.#checker?.stop();
    for (const t of this.#ejectionTimers) clearTimeout(t);
    this.#ejectionTimers.clear();
    for (const e of this.endpoints) e.release();
    this.#transport?.release();
  }
}

function hashFunction(on: NonNullable<ClusterConfig['lb']['hash_on']>): (req: ProxyRequest) => number | undefined {
  if (on.header !== undefined) {
    const name = on.header;
    return (req) => {
      const v = req.headers.get(name);
      return v === undefined ? undefined : hashKey(v);
    };
  }
  if (on.cookie !== undefined) {
    const name = on.cookie;
    return (req) => {
      const v = cookieValue(req.headers.getAll('cookie'), name);
      return v === undefined ? undefined : hashKey(v);
    };
  }
  return (req) => hashKey(req.context.downstreamAddress);
}

export function cookieValue(headers: readonly string[], name: string): string | undefined {
  for (const h of headers) {
    for (const part of h.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
    }
  }
  return undefined;
}
