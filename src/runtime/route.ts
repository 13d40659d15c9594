// Builds one route's pipeline from config: rewrites, header edits, body limit and timeout around its action.
import type { RouteConfig } from '../config/schema.js';
import { compose, type HttpService, type Layer } from '../core/service.js';
import { bodyLimitLayer } from '../filters/body-limit/body-limit.js';
import { headerMutationLayer } from '../filters/header-mutation/header-mutation.js';
import type { RouteStats, SidecarMetrics } from '../observability/catalogue.js';
import { timeoutLayer } from '../policies/timeout/timeout.js';
import { directResponseService, redirectService, rewriteLayer, weightedService } from '../router/actions.js';
import type { Cluster } from '../cluster/cluster.js';

export interface RouteRuntime {
  readonly name: string;
  readonly service: HttpService;
  /** Stats by cluster name ('' for routes without a cluster). */
  readonly stats: ReadonlyMap<string, RouteStats>;
  /** Cluster name when the route has exactly one, else ''. */
  readonly cluster: string;
}

export function buildRoute(
  cfg: RouteConfig,
  index: number,
  listener: string,
  listenerBodyLimit: number,
  clusters: ReadonlyMap<string, Cluster>,
  metrics: SidecarMetrics,
): RouteRuntime {
  const name = cfg.name ?? `route_${index}`;
  const stats = new Map<string, RouteStats>();
  let terminal: HttpService;
  let single = '';
  if (cfg.cluster !== undefined) {
    const cluster = clusters.get(cfg.cluster)!;
    single = cluster.name;
    stats.set(cluster.name, metrics.routeStats(listener, name, cluster.name));
    terminal = cluster.service;
  } else if (cfg.weighted_clusters !== undefined) {
    const choices = cfg.weighted_clusters.map((w) => {
      const cluster = clusters.get(w.cluster)!;
      stats.set(cluster.name, metrics.routeStats(listener, name, cluster.name));
      return { name: cluster.name, weight: w.weight, service: cluster.service };
    });
    terminal = weightedService(choices);
  } else if (cfg.redirect !== undefined) {
    stats.set('', metrics.routeStats(listener, name, ''));
    return { name, service: redirectService(cfg.redirect, cfg.match.prefix), stats, cluster: '' };
  } else {
    stats.set('', metrics.routeStats(listener, name, ''));
    return { name, service: directResponseService(cfg.direct_response!), stats, cluster: '' };
  }

  const layers: Layer[] = [
    bodyLimitLayer(cfg.max_request_body ?? listenerBodyLimit),
    timeoutLayer(cfg.timeout),
    headerMutationLayer(cfg.request_headers, cfg.response_headers),
    rewriteLayer(cfg.match.prefix, cfg.prefix_rewrite, cfg.host_rewrite),
  ];
  return { name, service: compose(layers, terminal), stats, cluster: single };
}
