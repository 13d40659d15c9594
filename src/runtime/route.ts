// Builds one route's pipeline from config: rewrites, header edits, body limit and timeout around its action.
import type { RouteConfig } from '../config/schema.js';
import { compose, type HttpService, type Layer } from '../core/service.js';
import { bodyLimitFilter } from '../filters/body-limit/body-limit.js';
import { attemptLayers, buildChain, routeView, type BuiltFilter } from '../filters/chain.js';
import type { FilterDeps } from '../filters/filter.js';
import { faultFilter } from '../filters/fault/fault.filter.js';
import { headerMutationFilter } from '../filters/header-mutation/header-mutation.js';
import type { RouteStats, SidecarMetrics } from '../observability/catalogue.js';
import { retryLayer } from '../policies/retry/retry.layer.js';
import { adaptiveConcurrencyLayer, makeLimiter } from '../policies/adaptive-concurrency/adaptive-concurrency.layer.js';
import { hedgeLayer } from '../policies/hedge/hedge.layer.js';
import { WindowedHistogram } from '../policies/latency/histogram.js';
import { systemClock } from '../core/clock.js';
import { timeoutLayer } from '../policies/timeout/timeout.js';
import { directResponseService, redirectService, rewriteLayer, weightedService } from '../router/actions.js';
import type { Cluster } from '../cluster/cluster.js';
import { Http1Upstream } from '../upstream/http1/pool.js';
import { Http2Upstream } from '../upstream/http2.js';
import { h2Observer } from '../observability/h2-metrics.js';
import { payloadLayers } from '../payloads/layers.js';

export interface RouteRuntime {
  readonly name: string;
  readonly service: HttpService;
  /** Stats by cluster name ('' for routes without a cluster). */
  readonly stats: ReadonlyMap<string, RouteStats>;
  /** Cluster name when the route has exactly one, else ''. */
  readonly cluster: string;
  /** The route's config (Upgrade tunnels read its response header edits and timeout). */
  readonly config?: RouteConfig;
  /**
   * The request phase of this route's pipeline for an Upgrade tunnel: the listener's filters as this route sees them,
   * fault, request header edits and the route's filters (not the HTTP-only layers: body limit, timeout, retry...).
   * Composed with the tunnel terminal by listener/tunnel-terminal.ts.
   */
  readonly tunnelLayers?: readonly Layer[];
}

export function buildRoute(
  cfg: RouteConfig,
  index: number,
  listener: string,
  listenerBodyLimit: number,
  clusters: ReadonlyMap<string, Cluster>,
  metrics: SidecarMetrics,
  listenerFilters: readonly BuiltFilter[] = [],
): RouteRuntime {
  const name = cfg.name ?? `route_${index}`;
  const deps: FilterDeps = { listener, route: name, metrics };
  // Outermost of all: the listener's chain as this route sees it (its filter_overrides applied), then the route's.
  const guards = routeView(listenerFilters, cfg.filter_overrides, deps);
  const routeFilters = buildChain(cfg.filters ?? [], deps).map((f) => f.layer);
  // Per-attempt layers of those filters (tracing's client spans), innermost around the cluster; usually none.
  const perAttempt = attemptLayers(listenerFilters, cfg.filter_overrides, cfg.filters ?? []);
  const stats = new Map<string, RouteStats>();
  let terminal: HttpService;
  let single = '';
  // Time to response head on this route, feeding the hedge delay (p95); only routes with a hedge block keep one.
  const hedgeHistogram = cfg.hedge ? new WindowedHistogram(30_000, systemClock) : undefined;
  if (cfg.cluster !== undefined) {
    const cluster = clusters.get(cfg.cluster)!;
    single = cluster.name;
    stats.set(cluster.name, metrics.routeStats(listener, name, cluster.name));
    terminal = clusterService(cfg, cluster, metrics, hedgeHistogram, perAttempt);
  } else if (cfg.weighted_clusters !== undefined) {
    const choices = cfg.weighted_clusters.map((w) => {
      const cluster = clusters.get(w.cluster)!;
      stats.set(cluster.name, metrics.routeStats(listener, name, cluster.name));
      return { name: cluster.name, weight: w.weight, service: clusterService(cfg, cluster, metrics, hedgeHistogram, perAttempt) };
    });
    terminal = weightedService(choices);
  } else if (cfg.redirect !== undefined) {
    stats.set('', metrics.routeStats(listener, name, ''));
    return { name, service: compose([...guards, ...routeFilters], redirectService(cfg.redirect, cfg.match.prefix)), stats, cluster: '', config: cfg };
  } else {
    stats.set('', metrics.routeStats(listener, name, ''));
    return { name, service: compose([...guards, ...routeFilters], directResponseService(cfg.direct_response!)), stats, cluster: '', config: cfg };
  }

  // The legacy route keys (max_request_body, fault, request_headers / response_headers) are sugar for the registered
  // filters, kept at the places in the pipeline they have always had.
  const fault = cfg.fault ? faultFilter.create(cfg.fault, deps) : identity;
  // Innermost of the route's own: the hop's protobuf bodies and compression (docs/payloads.md).
  const routeClusters = cfg.cluster !== undefined ? [cfg.cluster] : (cfg.weighted_clusters ?? []).map((w) => w.cluster);
  const payloads =
    cfg.protobuf_bodies || cfg.hop_compression
      ? payloadLayers(
          {
            listener,
            route: name,
            protobufBodies: cfg.protobuf_bodies,
            compression: cfg.hop_compression,
            towardSidecar: routeClusters.length > 0 && routeClusters.every((c) => clusters.get(c)?.config.peer === 'sidecar'),
          },
          metrics,
        )
      : [];
  const layers: Layer[] = [
    ...guards,
    // Outermost of the route's own: a shed request costs nothing downstream of here.
    adaptiveConcurrency(cfg, listener, name, metrics),
    bodyLimitFilter.create({ max_bytes: cfg.max_request_body ?? listenerBodyLimit }, deps),
    timeoutLayer(cfg.timeout, undefined, { headerAllowed: cfg.timeout_header_allowed }),
    // After the timeout, so an injected delay counts against the route timeout as a slow upstream would.
    fault,
    headerMutationFilter.create({ request: cfg.request_headers, response: cfg.response_headers }, deps),
    ...routeFilters,
    ...payloads,
    rewriteLayer(cfg.match.prefix, cfg.prefix_rewrite, cfg.host_rewrite),
  ];
  // The tunnel's answer head is edited by the terminal as it is written (response_headers), so only request edits here.
  const tunnelLayers = [...guards, fault, headerMutationFilter.create({ request: cfg.request_headers }, deps), ...routeFilters];
  return { name, service: compose(layers, terminal), stats, cluster: single, config: cfg, tunnelLayers };
}

/**
 * The cluster's attempt service, wrapped in the route's retry policy (innermost, so header edits and rewrites run
 * once per request, not once per attempt). Without a retry block this is cluster.service itself.
 */
function clusterService(cfg: RouteConfig, cluster: Cluster, metrics: SidecarMetrics, hedgeHistogram?: WindowedHistogram, perAttempt: readonly Layer[] = []): HttpService {
  cluster.bindMetrics(metrics);
  // Pools outlive snapshots and may serve several clusters: the observer labels by the request's cluster.
  const replays = metrics.staleConnectionReplays;
  for (const ep of cluster.endpoints) {
    if (ep.upstream instanceof Http1Upstream) ep.upstream.onStaleReplay = (name) => replays.get({ cluster: name }).inc();
    else if (ep.upstream instanceof Http2Upstream) ep.upstream.observer = h2Observer(metrics, cluster.name);
  }
  const retrying = cfg.retry !== undefined && cfg.retry.max_retries > 0;
  const labels = { cluster: cluster.name };
  const send = perAttempt.length === 0 ? cluster.service : compose(perAttempt, cluster.service);
  // Hedging wraps single attempts (inside retry); it shares the cluster retry budget, depositing only without retry.
  const attempt =
    cfg.hedge && hedgeHistogram
      ? hedgeLayer(
          cfg.hedge,
          cluster,
          {
            sent: metrics.hedges.get({ ...labels, outcome: 'sent' }),
            won: metrics.hedges.get({ ...labels, outcome: 'won' }),
            lost: metrics.hedges.get({ ...labels, outcome: 'lost' }),
            budget: metrics.hedges.get({ ...labels, outcome: 'budget' }),
          },
          { histogram: hedgeHistogram, deposit: !retrying },
        )(send)
      : send;
  if (!retrying) return attempt;
  return retryLayer(cfg.retry, cluster, {
    retry: (reason) => metrics.retries.get({ ...labels, reason }),
    budgetExhausted: metrics.retryBudgetExhausted.get(labels),
  })(attempt);
}

const identity: Layer = (next) => next;

/** The route's adaptive concurrency layer; without an adaptive_concurrency block it is left out of the pipeline. */
function adaptiveConcurrency(cfg: RouteConfig, listener: string, route: string, metrics: SidecarMetrics): Layer {
  const ac = cfg.adaptive_concurrency;
  if (!ac) return (next) => next;
  const limiter = makeLimiter(ac);
  const labels = { listener, route };
  metrics.adaptiveConcurrencyLimits.set(`${listener}\u0000${route}`, { labels, limit: () => limiter.limit });
  return adaptiveConcurrencyLayer(ac, { limiter, shed: metrics.adaptiveConcurrencyShed.get(labels), route });
}
