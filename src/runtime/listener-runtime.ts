// One listener's share of a config snapshot: its route table, limits and forward-proxy policy.
import type { ClusterConfig, ListenerConfig } from '../config/schema.js';
import { Cluster } from '../cluster/cluster.js';
import type { RouteStats, SidecarMetrics } from '../observability/catalogue.js';
import { compileHostMatcher, stripPort, type MatchInput } from '../router/matchers.js';
import { RouteTable } from '../router/route-table.js';
import { compose, type Layer } from '../core/service.js';
import { TIMEOUT_HEADER } from '../policies/timeout/deadline.js';
import { timeoutLayer } from '../policies/timeout/timeout.js';
import type { UpstreamRegistry } from '../upstream/registry.js';
import { attemptLayers, buildChain, type BuiltFilter } from '../filters/chain.js';
import { buildRoute, type RouteRuntime } from './route.js';
import type { ListenerVia } from './via.js';

export class ListenerRuntime {
  readonly name: string;
  /** This listener's Via names (loop detection): owned by the process, the same in every snapshot. */
  readonly via: ListenerVia;
  readonly config: ListenerConfig;
  readonly #table: RouteTable<RouteRuntime>;
  readonly #forwardAllowed: (host: string) => boolean;
  readonly #passthrough = new Map<string, { route: RouteRuntime; cluster: Cluster }>();
  readonly #registry: UpstreamRegistry;
  readonly #clusterDefaults: ClusterConfig;
  readonly #passthroughStats: RouteStats;
  /** Routes by name, for requests that end before their dispatch does (a client gone mid-request). */
  readonly #byName = new Map<string, RouteRuntime>();
  /** Stats for requests that matched no route. */
  readonly noRouteStats: RouteStats;
  readonly gauges: ReturnType<SidecarMetrics['listenerGauges']>;
  /** Callers get the full cause in x-sidecar-error (listeners[].expose_error_details; default: loopback only). */
  readonly exposeErrorDetails: boolean;
  /** listeners[].grpc_local_answers: gRPC clients get the sidecar's own answers in gRPC's trailers-only shape. */
  readonly grpcLocalAnswers: boolean;
  /** listeners[].request_id_in_response: upstream answers get the request's x-request-id too. */
  readonly requestIdInResponse: boolean;
  /** listeners[].filters, built once and shared by every route (each route applies its filter_overrides). */
  readonly filters: readonly BuiltFilter[];
  /**
   * Whom the hop marker (x-sidecar-hop) is believed from (listeners[].hop_marker): 'identity' on a listener that
   * verifies client certificates (only a peer with a verified identity), 'anyone' without (h2c between sidecars),
   * 'nobody' with hop_marker: ignore.
   */
  readonly hopTrust: 'identity' | 'anyone' | 'nobody';

  constructor(
    config: ListenerConfig,
    clusters: ReadonlyMap<string, Cluster>,
    registry: UpstreamRegistry,
    metrics: SidecarMetrics,
    clusterDefaults: ClusterConfig,
    via: ListenerVia,
  ) {
    this.name = config.name;
    this.via = via;
    this.#clusterDefaults = clusterDefaults;
    this.config = config;
    this.exposeErrorDetails = config.expose_error_details ?? isLoopback(config.address);
    this.#registry = registry;
    this.grpcLocalAnswers = config.grpc_local_answers;
    this.requestIdInResponse = config.request_id_in_response;
    this.hopTrust = config.hop_marker === 'ignore' ? 'nobody' : config.tls?.client_ca !== undefined ? 'identity' : 'anyone';
    this.filters = buildChain(config.filters, { listener: config.name, route: '', metrics });
    this.#table = new RouteTable(
      config.routes.map((r, i) => {
        const route = buildRoute(r, i, config.name, config.limits.max_request_body, clusters, metrics, this.filters);
        this.#byName.set(route.name, route);
        return { match: r.match, route };
      }),
    );
    this.#forwardAllowed = compileHostMatcher(config.forward.allowed_hosts);
    this.noRouteStats = metrics.routeStats(config.name, '', '');
    this.gauges = metrics.listenerGauges(config.name);
    this.#passthroughStats = metrics.routeStats(config.name, 'passthrough', 'passthrough');
  }

  /** Whether a request that carried the hop marker, from a peer with this verified identity (or none), is from a sidecar. */
  fromSidecar(peerIdentity: string | undefined): boolean {
    const trust = this.hopTrust;
    return trust === 'anyone' || (trust === 'identity' && peerIdentity !== undefined);
  }

  route(input: MatchInput): RouteRuntime | undefined {
    return this.#table.match(input);
  }

  /** The stats of the route and cluster a request was routed to (by name), or the no-route stats. */
  statsFor(route: string, cluster: string): RouteStats {
    if (route === 'passthrough') return this.#passthroughStats;
    return this.#byName.get(route)?.stats.get(cluster) ?? this.noRouteStats;
  }

  /** Forward mode: may a request for this host go straight to it? */
  forwardAllowed(authority: string): boolean {
    return this.config.mode === 'forward' && this.#forwardAllowed(stripPort(authority).replace(/^\[|\]$/g, ''));
  }

  /** A route to the named host itself (forward proxy pass-through); pools are created on first use. */
  passthrough(authority: string): RouteRuntime {
    const address = /:\d+$/.test(authority) && !authority.endsWith(']') ? authority : `${authority}:80`;
    let entry = this.#passthrough.get(address);
    if (!entry) {
      const cfg: ClusterConfig = {
        ...this.#clusterDefaults,
        name: `passthrough:${address}`,
        endpoints: [address],
        connect_timeout: this.config.forward.connect_timeout,
        pool: { ...this.#clusterDefaults.pool, max_connections: 64, keep_alive_timeout: 30_000 },
      };
      const cluster = new Cluster(cfg, this.#registry);
      const stats = new Map([['passthrough', this.#passthroughStats]]);
      const guards = this.filters.map((f) => f.layer);
      const layers = this.config.forward.passthrough_headers.timeout ? [...guards, timeoutLayer(15_000)] : [...guards, timeoutLayer(15_000), unannouncedDeadline];
      const perAttempt = attemptLayers(this.filters, undefined, []);
      const send = perAttempt.length === 0 ? cluster.service : compose(perAttempt, cluster.service);
      const route: RouteRuntime = { name: 'passthrough', service: compose(layers, send), stats, cluster: 'passthrough' };
      entry = { route, cluster };
      this.#passthrough.set(address, entry);
    }
    return entry.route;
  }

  release(): void {
    for (const { cluster } of this.#passthrough.values()) cluster.release();
    this.#passthrough.clear();
  }
}

/** 127.0.0.0/8, ::1 and localhost (also IPv4-mapped): only local callers can reach such a listener. */
export function isLoopback(address: string): boolean {
  const a = address.toLowerCase().replace(/^\[|\]$/g, '');
  return a === 'localhost' || a === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(a);
}

/**
 * Pass-through: the timeout above still applies, but a host outside the mesh is not told about it (no
 * x-sidecar-timeout, which would also show the mesh's deadline policy). The timer is armed already; only the
 * announcement reads ctx.deadline from here on.
 */
const unannouncedDeadline: Layer = (next) => (req) => {
  req.context.deadline = Infinity;
  req.headers.remove(TIMEOUT_HEADER);
  return next(req);
};
