// The labels of every metric family (le and quantile aside), for docs/metrics.md and the checks that keep the catalogue,
// the docs, the Grafana dashboard and a real scrape in agreement (src/observability/metric-docs.test.ts).
import type { FamilyInfo } from './metrics.js';

const LR = ['listener', 'route'] as const;
const CE = ['cluster', 'endpoint'] as const;

export const METRIC_LABELS: Readonly<Record<string, readonly string[]>> = {
  sidecar_requests_total: [...LR, 'cluster', 'status_class'],
  sidecar_request_duration_seconds: [...LR, 'cluster'],
  sidecar_requests_active: ['listener'],
  sidecar_downstream_connections_active: ['listener'],
  sidecar_downstream_connections_total: ['listener'],
  sidecar_downstream_rejected_total: ['listener', 'status'],
  sidecar_response_flags_total: ['listener', 'flag'],
  sidecar_http2_sessions_ended_total: ['listener', 'reason'],
  sidecar_tunnels_active: ['listener', 'kind'],
  sidecar_config_reloads_total: ['result'],
  sidecar_config_reload_failures_total: ['reason'],
  sidecar_config_last_reload_success_timestamp_seconds: [],
  sidecar_certificate_expiry_seconds: ['owner', 'file', 'serial'],
  sidecar_tls_handshake_failures_total: ['listener', 'cluster', 'reason'],
  sidecar_tls_reloads_total: ['owner', 'result'],
  sidecar_downstream_transport_connections_total: ['listener', 'transport'],
  sidecar_retries_total: ['cluster', 'reason'],
  sidecar_retry_budget_exhausted_total: ['cluster'],
  sidecar_circuit_breaker_open_total: ['cluster', 'threshold'],
  sidecar_upstream_stale_connection_replays_total: ['cluster'],
  sidecar_upstream_h2_sessions: CE,
  sidecar_upstream_h2_streams_per_session: [],
  sidecar_h2_goaways_total: ['side', 'direction', 'code'],
  sidecar_h2_resets_total: ['side', 'direction', 'code'],
  sidecar_authn_total: [...LR, 'filter', 'outcome'],
  sidecar_rbac_decisions_total: [...LR, 'decision'],
  sidecar_ext_authz_total: [...LR, 'outcome'],
  sidecar_faults_injected_total: [...LR, 'kind'],
  sidecar_rate_limit_decisions_total: [...LR, 'filter', 'result'],
  sidecar_outlier_ejections_total: ['cluster', 'reason'],
  sidecar_outlier_ejected_endpoints: ['cluster'],
  sidecar_health_checks_total: ['cluster', 'result'],
  sidecar_endpoint_healthy: CE,
  sidecar_discovery_updates_total: ['cluster', 'result'],
  sidecar_config_store_errors_total: ['reason'],
  sidecar_config_sync_writes_total: ['result'],
  sidecar_discovery_source_errors_total: ['cluster', 'source'],
  sidecar_cluster_panic_total: ['cluster'],
  sidecar_adaptive_concurrency_shed_total: LR,
  sidecar_adaptive_concurrency_limit: LR,
  sidecar_hedges_total: ['cluster', 'outcome'],
  sidecar_hop_protobuf_bodies_total: [...LR, 'side', 'body', 'outcome'],
  sidecar_hop_schema_mismatches_total: LR,
  sidecar_hop_body_bytes_total: [...LR, 'encoding'],
  sidecar_hop_compression_bytes_total: [...LR, 'algorithm', 'direction', 'stage'],
  sidecar_config_last_reload_successful: [],
  sidecar_grpc_requests_total: [...LR, 'grpc_service', 'grpc_method', 'grpc_code'],
  sidecar_grpc_request_duration_seconds: [...LR, 'grpc_service', 'grpc_method'],
  sidecar_circuit_breaker_at_capacity: ['cluster', 'threshold'],
  sidecar_upstream_requests_total: CE,
  sidecar_upstream_request_failures_total: CE,
  sidecar_upstream_requests_active: CE,
  sidecar_upstream_connections_active: CE,
  sidecar_upstream_request_duration_seconds: CE,
  sidecar_metrics_endpoints_folded: [],
  sidecar_app_metrics_scrape_ok: [],
  sidecar_app_metrics_scrape_duration_seconds: [],
  sidecar_app_metrics_samples: [],
  sidecar_app_metrics_families_dropped: [],
  sidecar_access_log_dropped_total: [],
  sidecar_tracing_spans_exported_total: [],
  sidecar_tracing_spans_dropped_total: ['reason'],
  process_cpu_user_seconds_total: [],
  process_cpu_system_seconds_total: [],
  process_cpu_seconds_total: [],
  process_resident_memory_bytes: [],
  process_open_fds: [],
  process_max_fds: [],
  process_start_time_seconds: [],
  nodejs_eventloop_lag_seconds: [],
  nodejs_eventloop_lag_max_seconds: [],
  nodejs_eventloop_utilization_ratio: [],
  nodejs_active_handles: ['type'],
  nodejs_heap_size_used_bytes: [],
  nodejs_heap_size_total_bytes: [],
  nodejs_external_memory_bytes: [],
  nodejs_gc_duration_seconds: ['kind'],
};

/** The sample names a family exposes (a histogram's _bucket, _sum, _count; a summary's _sum, _count). */
export function sampleNames(f: Pick<FamilyInfo, 'name' | 'kind'>): string[] {
  if (f.kind === 'histogram') return [`${f.name}_bucket`, `${f.name}_sum`, `${f.name}_count`];
  if (f.kind === 'summary') return [f.name, `${f.name}_sum`, `${f.name}_count`];
  return [f.name];
}

const GROUPS: ReadonlyArray<readonly [string, RegExp]> = [
  ['Requests (downstream)', /^sidecar_(requests|request_duration|downstream|response_flags|tunnels|http2_sessions)/],
  ['Upstreams and endpoints', /^sidecar_(upstream|endpoint|metrics_endpoints|h2_|discovery)/],
  ['Resilience', /^sidecar_(retr|circuit_breaker|outlier|health_checks|cluster_panic|adaptive|hedges)/],
  ['Security and policy', /^sidecar_(tls|certificate|authn|rbac|ext_authz|faults|rate_limit)/],
  ['gRPC and the mesh hop', /^sidecar_(grpc|hop)/],
  ['Config, discovery sources and logs', /^sidecar_(config|access_log)/],
  ['Tracing', /^sidecar_tracing/],
  ['Merged app metrics', /^sidecar_app_metrics/],
  ['Process and Node.js runtime', /^(process|nodejs)_/],
];

/** The generated part of docs/metrics.md: every family with its type, labels and meaning, in groups. */
export function metricsTable(families: readonly FamilyInfo[]): string {
  const out: string[] = [];
  const placed = new Set<string>();
  for (const [title, re] of GROUPS) {
    const here = families.filter((f) => !placed.has(f.name) && re.test(f.name));
    if (here.length === 0) continue;
    out.push(`### ${title}`, '', '| Series | Type | Labels | Meaning |', '| --- | --- | --- | --- |');
    for (const f of here) {
      placed.add(f.name);
      const labels = METRIC_LABELS[f.name] ?? [];
      const extra = f.kind === 'histogram' ? ['le'] : f.kind === 'summary' ? ['quantile'] : [];
      const shown = [...labels, ...extra].map((l) => `\`${l}\``).join(', ') || '—';
      out.push(`| \`${f.name}\` | ${f.kind} | ${shown} | ${f.help.replace(/\|/g, '\\|')} |`);
    }
    out.push('');
  }
  const rest = families.filter((f) => !placed.has(f.name));
  if (rest.length > 0) throw new Error(`metrics without a docs group: ${rest.map((f) => f.name).join(', ')}`);
  return out.join('\n');
}
