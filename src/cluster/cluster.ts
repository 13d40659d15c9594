// A cluster: its endpoint set (fed by a discovery source), its balancer, and the terminal service that sends one
// attempt to a picked endpoint.
import type { Transport } from '../upstream/registry.js';
import { hashKey, type BalancedEndpoint } from '../balancers/index.js';
import type { ClusterConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import { HOP_HEADER } from '../core/headers.js';
import { isProxyError, ProxyError } from '../core/errors.js';
import type { HttpService, ProxyRequest, ProxyResponse } from '../core/service.js';
import type { Counter, Histogram } from '../observability/metrics.js';
import type { SidecarMetrics } from '../observability/catalogue.js';
import { CircuitBreaker, type BreakerThreshold } from '../policies/circuit-breaker/breaker.js';
import { panic, type HealthStatus } from '../policies/health/health-state.js';
import type { OutlierOutcome } from '../policies/outlier/outlier.js';
import { discoveryFor, toDiscovered, type DiscoveredEndpoint, type DiscoverySource } from '../discovery/index.js';
import { Http2Upstream } from '../upstream/http2.js';
import { h2Observer } from '../observability/h2-metrics.js';
import { Http1Upstream } from '../upstream/http1/pool.js';
import { EndpointSet, type SetMember } from './endpoint-set.js';
import { ClusterStateRegistry, type ClusterState, type EndpointRecord } from './endpoint-state.js';
import { RetryBudget } from '../policies/retry/budget.js';
import type { EndpointStats, UpstreamLease, UpstreamRegistry } from '../upstream/registry.js';
import type { Upstream } from '../upstream/upstream.js';
import { whenBodyDone } from '../core/body.js';
import { noteAttempt, noteDecision, responseOutcome } from '../observability/request-debug.js';

export class Endpoint implements SetMember {
  readonly address: string;
  /** Changed in place by a discovery update (the balancer is rebuilt for it). */
  weight: number;
  readonly upstream: Upstream;
  readonly stats: EndpointStats;
  /** Health and ejection state of this (cluster, address), shared across snapshots. */
  readonly record: EndpointRecord;
  /** The discovery source that named it ("static", "file:PATH") and when it last changed (wall clock). */
  source: string;
  updatedAt: Date;
  /** Locality from the discovery source (etcd's zone), if any. */
  zone: string | undefined;
  /** Priority level from the discovery source (SRV priority); lower is preferred, 0 when the source gives none. */
  priority: number;
  /** Per-endpoint latency (admin.metrics.max_endpoint_series), set by the cluster; undefined: not timed. */
  latency: Histogram | undefined;
  /** Gives up the endpoint's metric series. */
  releaseSeries: (() => void) | undefined;
  readonly #lease: UpstreamLease;
  readonly #gate: EndpointGate;

  constructor(address: string, weight: number, lease: UpstreamLease, record: EndpointRecord, gate: EndpointGate, source: string, zone?: string, priority = 0) {
    this.address = address;
    this.weight = weight;
    this.zone = zone;
    this.priority = priority;
    this.#lease = lease;
    this.upstream = lease.upstream;
    this.stats = lease.stats;
    this.record = record;
    this.#gate = gate;
    this.source = source;
    this.updatedAt = new Date();
  }

  get active(): number {
    return this.stats.active;
  }

  get available(): boolean {
    return this.record.routable || this.#gate.panic;
  }

  release(): void {
    this.releaseSeries?.();
    this.#lease.release();
  }
}

/** Cluster-wide routing state; `panic` makes every endpoint routable. */
export interface EndpointGate {
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
  /** The hedge's second attempt (tracing marks its span). */
  readonly hedge?: boolean | undefined;
}

/** Failures of the attempt itself rather than an answer: connect failure, connection closed, reset, protocol error. */
const LOCAL_ORIGIN_FLAGS: ReadonlySet<string> = new Set(['UF', 'UC', 'UR', 'UPE']);


export interface ClusterOptions {
  /** Endpoint state shared across snapshots (the sidecar's); absent: a private one (state lives as long as the cluster). */
  readonly states?: ClusterStateRegistry | undefined;
  /** Default: the registry's clock. */
  readonly clock?: Clock | undefined;
  /** Default: the source the config names (discovery.file, else the static endpoints). */
  readonly source?: DiscoverySource | undefined;
}

/** What /clusters shows about the cluster's discovery. */
export interface DiscoveryStatus {
  readonly source: string;
  readonly version: number;
  readonly updatedAt: Date | undefined;
  readonly lastError: string | undefined;
  /** Wall-clock time a held empty update will be applied (empty_grace), or undefined. */
  readonly emptyPendingUntil: Date | undefined;
}

export class Cluster {
  readonly name: string;
  readonly config: ClusterConfig;
  /** Retries to this cluster, across all its routes, are withdrawn from this budget. */
  readonly retryBudget: RetryBudget;
  /** Hard concurrency caps (requests, pending requests, retries); connections cap the pools. */
  readonly breaker: CircuitBreaker;
  #metrics: SidecarMetrics | undefined;
  readonly #clock: Clock;
  readonly #poolConnections: number;
  /** HTTP/1.1 pools hold one request per connection; h2c multiplexes, so nothing waits for a connection there. */
  readonly #http1: boolean;
  /** peer: sidecar: every attempt carries the hop marker (x-sidecar-hop: 1); other upstreams never see it. */
  readonly #toSidecar: boolean;
  readonly #set: EndpointSet<Endpoint>;
  readonly #hashOf: ((req: ProxyRequest) => number | undefined) | undefined;
  readonly #gate: EndpointGate = { panic: false };
  readonly #states: ClusterStateRegistry;
  readonly #state: ClusterState;
  /** The state's `changes` and the set's version routability was last computed for. */
  #seenChanges = -1;
  #seenVersion = -1;
  readonly #panicCounter: Counter | undefined;
  readonly #source: DiscoverySource;
  #sourceUpdatedAt: Date | undefined;
  #sourceError: string | undefined;
  #released = false;
  /** An empty update waiting out discovery.empty_grace: cancels it. */
  #emptyTimer: (() => void) | undefined;
  #emptyAt: Date | undefined;
  /** Locality: pick from the local zone (enough of it is available). */
  #preferLocal = false;
  /** Priority levels: the index of the best level with an available endpoint; -1 = pick over every endpoint. */
  #level = -1;
  /** The discovery settings as a string: a carried-over set must come from the same ones. */
  readonly #discoveryKey: string | undefined;
  readonly #transport: Transport | undefined;
  /** Sends one attempt of the request to an endpoint the balancer picks. */
  readonly service: HttpService;

  /** `metrics` (given by the snapshot) feeds the outlier, health-check and panic metrics. */
  constructor(config: ClusterConfig, registry: UpstreamRegistry, metrics?: SidecarMetrics, opts: ClusterOptions = {}) {
    this.name = config.name;
    this.#metrics = metrics;
    this.config = config;
    const clock = opts.clock ?? registry.clock;
    this.#clock = clock;
    const budget = config.retry_budget; // defaults come from the schema (the config loader fills them in)
    this.retryBudget = new RetryBudget(
      { retryRatio: budget.retry_ratio, minRetriesPerSecond: budget.min_retries_per_second, ttlMs: budget.ttl },
      clock,
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
    this.#toSidecar = config.peer === 'sidecar';
    const transport = config.tls ? registry.tlsTransport(config.name, config.tls, config.protocol) : undefined;
    this.#transport = transport;
    this.#states = opts.states ?? new ClusterStateRegistry();
    metrics?.breakers.set(this.breaker, config.name);
    const state = this.#states.acquire(config, { metrics, clock, connector: transport?.connector ?? registry.connector });
    this.#state = state;
    if (config.outlier_detection || config.health_check) this.#panicCounter = metrics?.clusterPanic.get({ cluster: this.name });
    const source = opts.source ?? discoveryFor(config);
    this.#source = source;
    let sourceName = source.name;
    this.#set = new EndpointSet<Endpoint>(config.lb.policy, { ringSize: config.lb.ring_size }, {
      add: (d) => {
        const lease = registry.acquire(config.protocol, {
          address: d.address,
          connectTimeout: config.connect_timeout,
          maxConnections: poolConnections,
          keepAliveTimeout: config.pool.keep_alive_timeout,
          maxRequestsPerConnection: config.pool.max_requests_per_connection,
          streamIdleTimeout: config.stream_idle_timeout,
          maxConcurrentStreams: config.pool.max_concurrent_streams,
          maxSharePerDownstream: config.pool.max_share_per_downstream,
          reclaimStalledAfter: config.pool.reclaim_stalled_after,
          reclaimUploadMinRate: config.pool.reclaim_upload_min_rate,
          h2KeepaliveInterval: config.h2.keepalive_interval,
          h2KeepaliveTimeout: config.h2.keepalive_timeout,
        }, config.name, transport);
        const ep = new Endpoint(d.address, d.weight, lease, state.acquire(d.address), this.#gate, sourceName, d.zone, d.priority ?? 0);
        const replays = this.#metrics?.staleConnectionReplays;
        if (replays !== undefined && ep.upstream instanceof Http1Upstream) ep.upstream.onStaleReplay = (name) => replays.get({ cluster: name }).inc();
        if (this.#metrics !== undefined && ep.upstream instanceof Http2Upstream) ep.upstream.observer = h2Observer(this.#metrics, config.name);
        if (this.#metrics !== undefined) {
          const upstream = ep.upstream;
          const series = this.#metrics.endpoints.acquire(config.name, d.address, ep.stats, () => upstream.connections);
          ep.latency = series.latency;
          ep.releaseSeries = series.release;
        }
        return ep;
      },
      // The pool's close() lets requests in flight on it finish; the state goes when no snapshot has the address.
      remove: (e) => {
        e.release();
        state.release(e.address);
      },
    }, { localZone: config.locality?.local_zone });
    this.#hashOf = config.lb.policy === 'ring_hash' && config.lb.hash_on ? hashFunction(config.lb.hash_on) : undefined;
    this.service = (req) => this.#send(req);
    // Until the source first delivers: what the same source last delivered to this cluster name (a reload must not
    // start a network source's cluster empty), else the static endpoints given beside the source.
    this.#discoveryKey = config.discovery === undefined ? undefined : JSON.stringify(config.discovery);
    const carried = state.lastDiscovered;
    if (carried !== undefined && carried.key === this.#discoveryKey && carried.source === source.name) {
      this.#set.replace(carried.endpoints);
    } else if (config.discovery !== undefined && config.endpoints !== undefined) {
      sourceName = 'static';
      this.#set.replace(config.endpoints.map(toDiscovered));
      sourceName = source.name;
    }
    source.start({
      update: (list) => this.#apply(list, source.name),
      unavailable: (reason) => {
        this.#sourceError = reason;
        this.#metrics?.discoveryUpdates.get({ cluster: this.name, result: 'error' }).inc();
        this.#metrics?.discoverySourceErrors.get({ cluster: this.name, source: source.name }).inc();
      },
    });
  }

  /** The current version's endpoints. */
  get endpoints(): readonly Endpoint[] {
    return this.#set.list;
  }

  /** Discovery source, set version, last update and last error, for /clusters. */
  get discovery(): DiscoveryStatus {
    return { source: this.#source.name, version: this.#set.version, updatedAt: this.#sourceUpdatedAt, lastError: this.#sourceError, emptyPendingUntil: this.#emptyAt };
  }

  #apply(list: readonly DiscoveredEndpoint[], sourceName: string): void {
    if (this.#released) return;
    this.#emptyTimer?.();
    this.#emptyTimer = undefined;
    this.#emptyAt = undefined;
    const grace = this.config.discovery?.empty_grace ?? 0;
    if (list.length === 0 && this.#set.size > 0 && grace !== 0) {
      // A publish that empties the cluster is far more often a mistake than a wish to black-hole it.
      this.#metrics?.discoveryUpdates.get({ cluster: this.name, result: 'empty_held' }).inc();
      if (grace === 'never') {
        this.#sourceError = `${sourceName}: an update with no endpoints was not applied (empty_grace: never); the last ${this.#set.size} stay`;
        return;
      }
      this.#emptyAt = new Date(Date.now() + grace);
      this.#sourceError = `${sourceName}: an update with no endpoints is held until ${this.#emptyAt.toISOString()} (empty_grace)`;
      this.#emptyTimer = this.#clock.setTimeout(() => {
        this.#emptyTimer = undefined;
        this.#emptyAt = undefined;
        this.#commit([], sourceName);
      }, grace);
      return;
    }
    this.#commit(list, sourceName);
  }

  #commit(list: readonly DiscoveredEndpoint[], sourceName: string): void {
    if (this.#released) return;
    this.#sourceError = undefined;
    if (this.#discoveryKey !== undefined) this.#state.lastDiscovered = { key: this.#discoveryKey, endpoints: list, source: sourceName };
    const change = this.#set.replace(list);
    this.#metrics?.discoveryUpdates.get({ cluster: this.name, result: 'applied' }).inc();
    const now = new Date();
    this.#sourceUpdatedAt = now;
    for (const a of change.added) this.#set.get(a)!.updatedAt = now;
    for (const a of change.reweighted) this.#set.get(a)!.updatedAt = now;
    for (const e of this.#set.list) e.source = sourceName;
  }

  /** Picks an endpoint for the request; `avoid` (a failed attempt's endpoint) is skipped when another is available. */
  pick(req: ProxyRequest, avoid?: BalancedEndpoint): Endpoint | undefined {
    const set = this.#set;
    if (this.#state.changes !== this.#seenChanges || set.version !== this.#seenVersion) this.#refreshGate();
    if (this.#gate.panic) this.#panicCounter?.inc();
    return set.pick({ hash: this.#hashOf?.(req), avoid }, this.#preferLocal, this.#level);
  }

  /** Whether the cluster is routing to all endpoints because too few are healthy and not ejected. */
  get panic(): boolean {
    if (this.#state.changes !== this.#seenChanges || this.#set.version !== this.#seenVersion) this.#refreshGate();
    return this.#gate.panic;
  }

  /** Health and ejection state of one endpoint, for /clusters. */
  endpointStatus(e: Endpoint): EndpointStatus {
    const until = this.#state.outlier?.ejectedUntil(e.address);
    return {
      health: e.record.health?.state ?? 'unknown',
      ejected: until !== undefined,
      ejectedUntil: until === undefined ? undefined : new Date(Date.now() + (until - this.#clock.now())),
      ejections: e.record.ejections,
    };
  }

  #refreshGate(): void {
    const state = this.#state;
    const list = this.#set.list;
    const guarded = state.guarded;
    let up = 0;
    let localUp = 0;
    for (const e of list) {
      const r = e.record;
      const ok = !guarded || ((r.health === undefined || r.health.routable) && !state.isEjected(e.address));
      r.routable = ok;
      if (ok) {
        up++;
        if (this.#set.isLocal(e)) localUp++;
      }
    }
    const locality = this.config.locality;
    const localTotal = this.#set.localCount;
    this.#preferLocal = locality !== undefined && localTotal > 0 && localUp * 100 >= locality.min_available_percent * localTotal;
    // isEjected() may have emitted unejects that moved `changes` again; the loop above already saw them.
    this.#seenChanges = state.changes;
    this.#seenVersion = this.#set.version;
    this.#gate.panic = guarded && panic(up, list.length, this.config.panic_threshold);
    // Priority levels (RFC 2782): the best level with an available endpoint takes every pick; in panic, or with none
    // available anywhere, every endpoint is a candidate.
    this.#level = -1;
    const levels = this.#set.levels;
    if (levels !== undefined && !this.#gate.panic) this.#level = levels.findIndex((l) => l.members.some((e) => e.record.routable));
  }

  /** The priority level picks go to now (its priority number), or undefined without levels or when none is chosen. */
  get activePriority(): number | undefined {
    if (this.#state.changes !== this.#seenChanges || this.#set.version !== this.#seenVersion) this.#refreshGate();
    return this.#set.levels?.[this.#level]?.priority;
  }

  #recordOutcome(ep: Endpoint, outcome: OutlierOutcome): void {
    this.#state.record(ep.address, outcome);
  }

  /** The endpoint of this cluster with that address, if any (the retry layer knows a failed attempt by ctx.endpoint). */
  endpointByAddress(address: string): Endpoint | undefined {
    return this.#set.get(address);
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
    // Taken before anything else, synchronously: the layer that set it is waiting for this very call.
    const observer = req.context.attemptObserver;
    if (observer !== undefined) req.context.attemptObserver = undefined;
    const ep = this.pick(req, req.avoid);
    if (!ep) {
      if (this.#metrics?.debugRequests.enabled) noteDecision(req.context, `cluster ${this.name} had no healthy, non-ejected endpoint to pick (outlier/health)`);
      throw new ProxyError('UH', `no healthy endpoint in cluster ${this.name}`);
    }
    const breaker = this.breaker;
    if (!breaker.tryAcquireRequest()) {
      if (this.#metrics?.debugRequests.enabled) noteDecision(req.context, `circuit breaker max_requests (${breaker.maxRequests}) of cluster ${this.name} was full: refused without sending`);
      throw this.overflow('max_requests', breaker.maxRequests);
    }
    // An HTTP/1.1 request is pending when every pooled connection of its endpoint is busy: it waits in the pool's
    // queue, and counts as pending until its response head arrives (an approximation: the pool does not say when
    // it hands the request a connection, and pools are not pipelined, so a busy connection holds one request).
    const stats = ep.stats;
    let pending = false;
    if (this.#http1 && stats.active >= this.#poolConnections) {
      if (!breaker.tryAcquirePending()) {
        breaker.releaseRequest();
        if (this.#metrics?.debugRequests.enabled) noteDecision(req.context, `circuit breaker max_pending_requests (${breaker.maxPendingRequests}) of cluster ${this.name} was full: refused without sending`);
        throw this.overflow('max_pending_requests', breaker.maxPendingRequests);
      }
      pending = true;
    }
    const ctx = req.context;
    ctx.endpoint = ep.address;
    ctx.attempts++;
    // set, not add: retries and hedges send the same headers again.
    if (this.#toSidecar) req.headers.set(HOP_HEADER, '1');
    stats.active++;
    stats.requests++;
    let res: ProxyResponse;
    const debug = this.#metrics?.debugRequests.enabled === true;
    // One clock read at each end serves both the request recorder (on by default) and the endpoint's histogram.
    const latency = ep.latency;
    const timed = debug || latency !== undefined;
    const began = timed ? performance.now() : 0;
    let took = 0;
    try {
      res = await ep.upstream.request(req, req.cancel);
      if (timed) took = performance.now() - began;
      latency?.observe(took / 1000);
    } catch (err) {
      if (debug) {
        const e = isProxyError(err) ? err : undefined;
        noteAttempt(ctx, {
          endpoint: ep.address,
          start: began - ctx.startTime,
          duration: performance.now() - began,
          outcome: e ? `failed ${e.flag}${e.outcome ? ` (${e.outcome})` : ''}: ${e.message}` : `failed: ${String(err)}`,
          flag: e?.flag,
          error: e?.message,
        });
      }
      if (this.#state.outlier !== undefined && isProxyError(err) && LOCAL_ORIGIN_FLAGS.has(err.flag)) this.#recordOutcome(ep, 'local-origin-failure');
      stats.active--;
      // A client that went away says nothing about the endpoint (a timeout does); nor does a fairness refusal.
      const reason = req.cancel.reason;
      const unfair = isProxyError(err) && err.flag === 'UO';
      if (unfair) this.#metrics?.circuitBreakerOpen.get({ cluster: this.name, threshold: 'max_share_per_downstream' }).inc();
      else if (!(isProxyError(reason) && (reason.flag === 'DC' || reason.flag === 'LR'))) stats.failures++;
      if (pending) breaker.releasePending();
      breaker.releaseRequest();
      observer?.attemptEnded(isProxyError(err) ? err.status : 502, err, null);
      throw err;
    }
    if (pending) breaker.releasePending();
    if (debug) noteAttempt(ctx, { endpoint: ep.address, start: began - ctx.startTime, duration: took, outcome: responseOutcome(res.status), status: res.status });
    if (res.status >= 500) stats.failures++;
    if (this.#state.outlier !== undefined) {
      const s = res.status;
      this.#recordOutcome(ep, s < 500 ? 'success' : s >= 502 && s <= 504 ? 'gateway-error' : '5xx');
    }
    // The request holds its slot until the body is done; a whole (already complete) body frees it now.
    whenBodyDone(res.body, () => {
      stats.active--;
      breaker.releaseRequest();
      observer?.attemptEnded(res.status, undefined, res.body);
    });
    return res;
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#metrics?.breakers.delete(this.breaker);
    this.#emptyTimer?.();
    this.#source.stop();
    this.#set.clear();
    this.#states.release(this.#state);
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
