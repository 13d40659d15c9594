// Every metric the sidecar exports, in one place: names, help text and labels.
import { type Counter, type Gauge, type Histogram, type Labels, MetricsRegistry } from './metrics.js';
import { DebugRequests } from './request-debug.js';
import { LatencyHistory } from './latency-history.js';
import { GrpcRouteSeries, GRPC_SERIES_PER_ROUTE } from './grpc-metrics.js';
import { EndpointSeries } from './endpoint-metrics.js';
import { BREAKER_THRESHOLDS, type CircuitBreaker } from '../policies/circuit-breaker/breaker.js';
import { ProcessMetrics } from './process-metrics.js';
import { mergeFamilies, render, type Family, type Format } from './exposition.js';

export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** Series for one (listener, route, cluster) triple, resolved at config build time. */
export interface RouteStats {
  /** Indexed by status / 100 - 1. */
  readonly responses: readonly Counter[];
  readonly duration: Histogram;
}

export class SidecarMetrics {
  readonly registry = new MetricsRegistry();
  /** Recent requests and their stories (admin /debug/requests); configured from admin.debug_requests. */
  readonly debugRequests = new DebugRequests();
  /** Per-minute latency histograms of the last 15 minutes (admin GET /latency); minutes follow the wall clock. */
  readonly latencyHistory = new LatencyHistory({ now: Date.now });
  /** Every answer given, and those that failed (5xx, 499 or a response flag): the dashboard's success rate. */
  answered = 0;
  failedAnswers = 0;
  readonly requests = this.registry.counter('sidecar_requests_total', 'Requests answered, by listener, route, cluster and status class.');
  readonly duration = this.registry.histogram(
    'sidecar_request_duration_seconds',
    'Time from the request head arriving to the last response byte, by listener, route and cluster.',
  );
  readonly activeRequests = this.registry.gauge('sidecar_requests_active', 'Requests in flight, by listener.');
  readonly connectionsActive = this.registry.gauge('sidecar_downstream_connections_active', 'Open downstream connections, by listener.');
  readonly connectionsTotal = this.registry.counter('sidecar_downstream_connections_total', 'Accepted downstream connections, by listener.');
  readonly rejected = this.registry.counter(
    'sidecar_downstream_rejected_total',
    'Malformed or over-limit requests answered with 4xx/5xx and a closed connection, by listener and status.',
  );
  readonly flags = this.registry.counter('sidecar_response_flags_total', 'Responses the sidecar generated or cut short, by listener and response flag.');
  readonly http2SessionsEnded = this.registry.counter(
    'sidecar_http2_sessions_ended_total',
    'Downstream HTTP/2 sessions ended because the client misbehaved, by listener and reason (rapid_reset, invalid_frames, session_error).',
  );
  readonly tunnels = this.registry.gauge('sidecar_tunnels_active', 'Open WebSocket and CONNECT tunnels, by listener and kind.');
  readonly reloads = this.registry.counter('sidecar_config_reloads_total', 'Config reloads, by result (success, failure).');
  readonly reloadFailures = this.registry.counter(
    'sidecar_config_reload_failures_total',
    'Reloads that left the running config in force, by reason (unreadable, invalid, empty_file, no_listeners, apply).',
  );
  readonly reloadTime = this.registry.gauge('sidecar_config_last_reload_success_timestamp_seconds', 'Unix time of the last successful config load.');
  /** Certificates in force, by a key of their owner and file: read at scrape time for the expiry gauge. */
  readonly certificatesInForce = new Map<string, { readonly labels: Labels; readonly notAfter: number }>();
  readonly certificateExpiry = this.registry.gauge(
    'sidecar_certificate_expiry_seconds',
    'Seconds until a certificate in force expires (negative: expired), by owner (listener:NAME or cluster:NAME), file and serial.',
    () => [...this.certificatesInForce.values()].map((c): [Labels, number] => [c.labels, Math.round((c.notAfter - Date.now()) / 1000)]),
  );
  readonly tlsHandshakeFailures = this.registry.counter(
    'sidecar_tls_handshake_failures_total',
    'TLS handshakes refused or failed, by listener or cluster and reason (expired, not_yet_valid, unknown_ca, self_signed, name_mismatch, identity_mismatch, no_client_cert, not_tls, protocol, timeout, other).',
  );
  readonly tlsReloads = this.registry.counter(
    'sidecar_tls_reloads_total',
    'Reloads of certificate, key or trust-bundle files, by owner and result (success, failure: the previous material stays in force).',
  );
  readonly downstreamTransport = this.registry.counter(
    'sidecar_downstream_transport_connections_total',
    'Connections accepted on TLS listeners, by listener and transport (plaintext: permissive mode without TLS, tls, mtls: with a verified client certificate).',
  );
  readonly retries = this.registry.counter('sidecar_retries_total', 'Retries sent, by cluster and the condition that triggered them.');
  readonly retryBudgetExhausted = this.registry.counter(
    'sidecar_retry_budget_exhausted_total',
    'Retries not sent because the cluster retry budget was empty, by cluster.',
  );
  readonly circuitBreakerOpen = this.registry.counter(
    'sidecar_circuit_breaker_open_total',
    'Requests or retries refused by a circuit breaker, by cluster and threshold (max_share_per_downstream: the pool fairness limit).',
  );
  readonly staleConnectionReplays = this.registry.counter(
    'sidecar_upstream_stale_connection_replays_total',
    'Requests replayed on a fresh connection after a reused HTTP/1.1 keep-alive connection closed before any response byte, by cluster.',
  );
  readonly upstreamH2Sessions = this.registry.gauge('sidecar_upstream_h2_sessions', 'Open HTTP/2 sessions (h2c, h2) to upstream endpoints, by cluster and endpoint.');
  readonly upstreamH2StreamsPerSession = this.registry.histogram(
    'sidecar_upstream_h2_streams_per_session',
    'Streams an upstream HTTP/2 session carried over its life, observed when it closes.',
    [1, 2, 5, 10, 25, 50, 100, 250, 1000, 10_000, 100_000],
  );
  readonly h2Goaways = this.registry.counter(
    'sidecar_h2_goaways_total',
    'HTTP/2 GOAWAY frames the sidecar sent or received, by side (upstream: sessions to upstreams; downstream: sessions of its listeners), direction (sent, received) and code (NO_ERROR, ENHANCE_YOUR_CALM...).',
  );
  readonly h2Resets = this.registry.counter(
    'sidecar_h2_resets_total',
    'HTTP/2 streams reset (RST_STREAM), by side (upstream, downstream), direction (sent: by the sidecar, received: by the peer) and code (CANCEL, REFUSED_STREAM...).',
  );
  readonly authnOutcomes = this.registry.counter('sidecar_authn_total', 'Authentication outcomes, by listener, route, filter (jwt_authn, api_key) and outcome (ok, anonymous, missing, invalid).');
  readonly rbacDecisions = this.registry.counter('sidecar_rbac_decisions_total', 'Authorization decisions, by listener, route and decision (allow, deny, dry_run_deny).');
  readonly extAuthz = this.registry.counter('sidecar_ext_authz_total', 'External authorization checks, by listener, route and outcome (allow, deny, error, cache_hit).');
  readonly faultsInjected = this.registry.counter('sidecar_faults_injected_total', 'Faults injected, by listener, route and kind (delay, abort).');
  readonly rateLimitDecisions = this.registry.counter(
    'sidecar_rate_limit_decisions_total',
    'Rate-limit decisions, by listener, route (empty for a listener filter), filter (local_rate_limit, global_rate_limit) and result (allowed, limited: over the token bucket, over_concurrency: over max_in_flight for its key, store_error_allowed / store_error_denied: Redis unreachable or slow, failed open / closed).',
  );
  readonly outlierEjections = this.registry.counter(
    'sidecar_outlier_ejections_total',
    'Endpoints ejected by outlier detection, by cluster and reason (consecutive-5xx, consecutive-gateway-failure).',
  );
  readonly outlierEjected = this.registry.gauge('sidecar_outlier_ejected_endpoints', 'Endpoints currently ejected by outlier detection, by cluster.');
  readonly healthChecks = this.registry.counter('sidecar_health_checks_total', 'Active health-check probes, by cluster and result (success, failure).');
  readonly endpointHealthy = this.registry.gauge(
    'sidecar_endpoint_healthy',
    'Active health checking: 1 while an endpoint is healthy (or not yet probed), 0 while unhealthy, by cluster and endpoint.',
  );
  readonly discoveryUpdates = this.registry.counter(
    'sidecar_discovery_updates_total',
    'Endpoint-set updates from a cluster\'s discovery source, by cluster and result (applied; error: source unavailable or invalid, last good set kept; empty_held: an update with no endpoints held by discovery.empty_grace).',
  );
  readonly configStoreErrors = this.registry.counter(
    'sidecar_config_store_errors_total',
    'config_source problems, by reason (unavailable: the store cannot be read; invalid: its document was refused; missing: the key does not exist); the last good config stays.',
  );
  readonly configSyncWrites = this.registry.counter(
    'sidecar_config_sync_writes_total',
    'config_sync: files written or removed for the app, by result (written, removed, error).',
  );
  readonly discoverySourceErrors = this.registry.counter(
    'sidecar_discovery_source_errors_total',
    'Failed reads of a discovery source (a failed DNS lookup, an etcd disconnect, an invalid file or entry), by cluster and source; the last good set is kept.',
  );
  readonly clusterPanic = this.registry.counter(
    'sidecar_cluster_panic_total',
    'Requests routed to all endpoints because too few were healthy (panic_threshold), by cluster.',
  );
  readonly adaptiveConcurrencyShed = this.registry.counter(
    'sidecar_adaptive_concurrency_shed_total',
    'Requests answered 503 LS because the adaptive concurrency limit was reached, by listener and route.',
  );
  readonly adaptiveConcurrencyLimits = new Map<string, { labels: { listener: string; route: string }; limit: () => number }>();
  readonly adaptiveConcurrencyLimit = this.registry.gauge(
    'sidecar_adaptive_concurrency_limit',
    'Current adaptive concurrency limit, by listener and route.',
    () => Array.from(this.adaptiveConcurrencyLimits.values(), (e): [{ listener: string; route: string }, number] => [e.labels, e.limit()]),
  );
  readonly hedges = this.registry.counter(
    'sidecar_hedges_total',
    'Hedged attempts, by cluster and outcome (sent, won, lost, budget = not sent for want of retry budget).',
  );
  readonly hopProtobufBodies = this.registry.counter(
    'sidecar_hop_protobuf_bodies_total',
    'Bodies of routes with protobuf_bodies, by listener, route, side (sending, receiving), body (request, response) and outcome (encoded, decoded, json: the far end does not know the schema yet, kept_json: too large or would not round-trip, invalid: answered 400).',
  );
  readonly hopSchemaMismatches = this.registry.counter(
    'sidecar_hop_schema_mismatches_total',
    'protobuf_bodies schema fingerprints that differed between the two sidecars of a hop (bodies fell back to JSON), by listener and route.',
  );
  readonly hopBodyBytes = this.registry.counter(
    'sidecar_hop_body_bytes_total',
    'Bytes of the bodies protobuf_bodies converted, by listener, route and encoding (json: as the app sees them, protobuf: on the hop).',
  );
  readonly hopCompressionBytes = this.registry.counter(
    'sidecar_hop_compression_bytes_total',
    'Bytes through hop compression, by listener, route, algorithm, direction (compress, decompress) and stage (in, out).',
  );
  readonly tracingSpansExported = this.registry.counter('sidecar_tracing_spans_exported_total', 'Spans the tracing filter exported to its OTLP collector (accepted with a 2xx).');
  readonly tracingSpansDropped = this.registry.counter(
    'sidecar_tracing_spans_dropped_total',
    'Finished spans not exported, by reason (queue_full: over max_queue; timeout, unreachable, rejected: the export of their batch failed; encoding).',
  );
  readonly configValid = this.registry.gauge('sidecar_config_last_reload_successful', '1 when the last reload attempt succeeded, 0 when it was rejected.');
  readonly grpcRequests = this.registry.counter(
    'sidecar_grpc_requests_total',
    `gRPC calls answered (requests with content-type application/grpc*), by listener, route, grpc_service, grpc_method (from the path) and grpc_code (from the trailers, a trailers-only head or the sidecar's own answer); past ${GRPC_SERIES_PER_ROUTE} label sets per route, new ones count as grpc_service="other", grpc_method="other".`,
  );
  readonly grpcDuration = this.registry.histogram(
    'sidecar_grpc_request_duration_seconds',
    'Time from a gRPC call\'s request head to its end (trailers sent), by listener, route, grpc_service and grpc_method.',
  );
  /** Lines the access log dropped so far (the orchestrator points it at the log in force). */
  accessLogDropped: () => number = () => 0;
  readonly accessLogDroppedTotal = this.registry.counter('sidecar_access_log_dropped_total', 'Access-log lines dropped because the destination could not keep up.', () => [[{}, this.accessLogDropped()]]);
  /** Circuit breakers of live clusters and their names, oldest first (during a reload the newest of a name counts). */
  readonly breakers = new Map<CircuitBreaker, string>();
  readonly breakerAtCapacity = this.registry.gauge(
    'sidecar_circuit_breaker_at_capacity',
    'Circuit breaker state: 1 while a threshold of a cluster is full (new requests, pending requests, retries or connections past it are refused), else 0; by cluster and threshold (max_connections, max_pending_requests, max_requests, max_retries).',
    () => {
      const out: Array<[Labels, number]> = [];
      const newest = new Map<string, CircuitBreaker>();
      for (const [b, cluster] of this.breakers) newest.set(cluster, b);
      for (const [cluster, b] of newest) {
        const open = b.snapshot().open;
        for (const threshold of BREAKER_THRESHOLDS) out.push([{ cluster, threshold }, open.includes(threshold) ? 1 : 0]);
      }
      return out;
    },
  );
  /** Per-endpoint upstream series, capped by admin.metrics.max_endpoint_series (the rest: endpoint="other"). */
  readonly endpoints = new EndpointSeries();
  readonly upstreamRequests = this.registry.counter(
    'sidecar_upstream_requests_total',
    'Attempts sent to an upstream endpoint (retries and hedges included), by cluster and endpoint (past admin.metrics.max_endpoint_series endpoints: endpoint="other").',
    () => this.endpoints.collect('requests'),
  );
  readonly upstreamFailures = this.registry.counter(
    'sidecar_upstream_request_failures_total',
    'Attempts that failed at an endpoint (connect failure, reset, timeout, or a 5xx answer), by cluster and endpoint.',
    () => this.endpoints.collect('failures'),
  );
  readonly upstreamActive = this.registry.gauge('sidecar_upstream_requests_active', 'Attempts in flight to an endpoint, by cluster and endpoint.', () => this.endpoints.collect('active'));
  readonly upstreamConnections = this.registry.gauge(
    'sidecar_upstream_connections_active',
    'Open connections (HTTP/2: sessions) of the pool of an endpoint, by cluster and endpoint.',
    () => this.endpoints.collect('connections'),
  );
  readonly upstreamDuration = this.registry.histogram(
    'sidecar_upstream_request_duration_seconds',
    'Time from sending an attempt to its response head, by cluster and endpoint.',
    undefined,
    () => this.endpoints.histograms(),
  );
  readonly endpointsFolded = this.registry.gauge(
    'sidecar_metrics_endpoints_folded',
    'Endpoints whose upstream series count under endpoint="other" because admin.metrics.max_endpoint_series was reached.',
    () => [[{}, this.endpoints.folded]],
  );
  /** Merging the app's metrics (admin.metrics.merge_app): the outcome of the last fetch. */
  readonly appScrapeOk = this.registry.gauge('sidecar_app_metrics_scrape_ok', '1 when the app\'s metrics (admin.metrics.merge_app) were fetched and parsed for this scrape, else 0.');
  readonly appScrapeDuration = this.registry.gauge('sidecar_app_metrics_scrape_duration_seconds', 'How long fetching the app\'s metrics took for this scrape.');
  readonly appSamples = this.registry.gauge('sidecar_app_metrics_samples', 'Samples of the app merged into this scrape.');
  readonly appFamiliesDropped = this.registry.gauge(
    'sidecar_app_metrics_families_dropped',
    'App metric families left out of this scrape because the sidecar exports a family of that name with another type.',
  );
  /** process_* and nodejs_* (admin.metrics.process); the orchestrator starts them. */
  readonly process = new ProcessMetrics(this.registry);
  readonly #grpcRoutes = new Map<string, GrpcRouteSeries>();

  /** One finished gRPC call (cold for everything that is not gRPC: only gRPC requests come here). */
  grpcCall(listener: string, route: string, path: string, code: number, seconds: number): void {
    const key = `${listener}\u0000${route}`;
    let series = this.#grpcRoutes.get(key);
    if (series === undefined) {
      series = new GrpcRouteSeries(listener, route, this.grpcRequests, this.grpcDuration);
      this.#grpcRoutes.set(key, series);
    }
    series.record(path, code, seconds);
  }

  /**
   * The /metrics body: the sidecar's series, then (merge_app) the app's as fetched for this scrape (`app`, already
   * labelled), or none when the fetch failed: the app failing never fails the scrape.
   */
  scrape(format: Format, app?: { readonly ok: true; readonly families: readonly Family[]; readonly seconds: number } | { readonly ok: false; readonly seconds: number }): string {
    if (app === undefined) return this.registry.render(format);
    this.appScrapeOk.get().set(app.ok ? 1 : 0);
    this.appScrapeDuration.get().set(app.seconds);
    this.appSamples.get().set(app.ok ? app.families.reduce((n, f) => n + f.samples.length, 0) : 0);
    this.appFamiliesDropped.get().set(0);
    if (!app.ok) return this.registry.render(format);
    const merged = mergeFamilies(this.registry.families(), app.families);
    // Known only once merged: patched into the rendering of this scrape.
    this.appFamiliesDropped.get().set(merged.dropped);
    const families = merged.families.map((f) => (f.name === 'sidecar_app_metrics_families_dropped' ? { ...f, samples: [{ name: f.name, labels: {}, value: merged.dropped }] } : f));
    return render(families, format);
  }

  routeStats(listener: string, route: string, cluster: string): RouteStats {
    const labels = { listener, route, cluster };
    return {
      responses: STATUS_CLASSES.map((status_class) => this.requests.get({ ...labels, status_class })),
      duration: this.duration.get(labels),
    };
  }

  listenerGauges(listener: string): { active: Gauge; connections: Gauge; accepted: Counter } {
    return {
      active: this.activeRequests.get({ listener }),
      connections: this.connectionsActive.get({ listener }),
      accepted: this.connectionsTotal.get({ listener }),
    };
  }
}
