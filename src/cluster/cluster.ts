// A cluster: its endpoints, its balancer, and the terminal service that sends one attempt to a picked endpoint.
import { createBalancer, hashKey, type BalancedEndpoint, type LoadBalancer } from '../balancers/index.js';
import { circuitBreakers, retryBudget, type ClusterConfig } from '../config/schema.js';
import { systemClock } from '../core/clock.js';
import { ProxyError } from '../core/errors.js';
import type { HttpService, ProxyRequest, ProxyResponse } from '../core/service.js';
import type { SidecarMetrics } from '../observability/catalogue.js';
import { CircuitBreaker, type BreakerThreshold } from '../policies/circuit-breaker/breaker.js';
import { RetryBudget } from '../policies/retry/budget.js';
import type { EndpointStats, UpstreamLease, UpstreamRegistry } from '../upstream/registry.js';
import type { Upstream } from '../upstream/upstream.js';

export class Endpoint implements BalancedEndpoint {
  readonly address: string;
  readonly weight: number;
  readonly upstream: Upstream;
  readonly stats: EndpointStats;
  readonly #lease: UpstreamLease;

  constructor(address: string, weight: number, lease: UpstreamLease) {
    this.address = address;
    this.weight = weight;
    this.#lease = lease;
    this.upstream = lease.upstream;
    this.stats = lease.stats;
  }

  get active(): number {
    return this.stats.active;
  }

  get available(): boolean {
    return true;
  }

  release(): void {
    this.#lease.release();
  }
}

/** One attempt of a request as the retry layer sends it: its own Cancellation and an endpoint to steer clear of. */
export interface AttemptRequest extends ProxyRequest {
  /** The endpoint a previous attempt failed on; the balancer picks another one when it can. */
  readonly avoid?: BalancedEndpoint | undefined;
}

const DEFAULT_BUDGET = retryBudget.parse({});
const DEFAULT_BREAKERS = circuitBreakers.parse({});

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
  /** Sends one attempt of the request to an endpoint the balancer picks. */
  readonly service: HttpService;

  constructor(config: ClusterConfig, registry: UpstreamRegistry) {
    this.name = config.name;
    this.config = config;
    const budget = config.retry_budget ?? DEFAULT_BUDGET;
    this.retryBudget = new RetryBudget(
      { retryRatio: budget.retry_ratio, minRetriesPerSecond: budget.min_retries_per_second, ttlMs: budget.ttl },
      systemClock,
    );
    const cb = config.circuit_breakers ?? DEFAULT_BREAKERS;
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
    this.endpoints = config.endpoints.map((e) => {
      const address = typeof e === 'string' ? e : e.address;
      const weight = typeof e === 'string' ? 1 : e.weight;
      const lease = registry.acquire(config.protocol, {
        address,
        connectTimeout: config.connect_timeout,
        maxConnections: poolConnections,
        keepAliveTimeout: config.pool.keep_alive_timeout,
        maxRequestsPerConnection: config.pool.max_requests_per_connection,
        streamIdleTimeout: config.stream_idle_timeout,
      });
      return new Endpoint(address, weight, lease);
    });
    this.#balancer = createBalancer(config.lb.policy, this.endpoints, { ringSize: config.lb.ring_size });
    this.#hashOf = config.lb.policy === 'ring_hash' && config.lb.hash_on ? hashFunction(config.lb.hash_on) : undefined;
    this.service = (req) => this.#send(req);
  }

  /** Picks an endpoint for the request; `avoid` (a failed attempt's endpoint) is skipped when another is available. */
  pick(req: ProxyRequest, avoid?: BalancedEndpoint): Endpoint | undefined {
    return this.#balancer.pick({ hash: this.#hashOf?.(req), avoid });
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
      stats.active--;
      stats.failures++;
      if (pending) breaker.releasePending();
      breaker.releaseRequest();
      throw err;
    }
    if (pending) breaker.releasePending();
    if (res.status >= 500) stats.failures++;
    if (res.body) {
      res.body.once('close', () => {
        stats.active--;
        breaker.releaseRequest();
      });
    } else {
      stats.active--;
      breaker.releaseRequest();
    }
    return res;
  }

  release(): void {
    for (const e of this.endpoints) e.release();
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
