// What the sidecar knows about a cluster's endpoints (health, ejections), keyed by (cluster, address), outliving
// config snapshots and endpoint-set changes: released only when no snapshot's cluster uses it any more.
import type { DiscoveredEndpoint } from '../discovery/source.js';
import type { ClusterConfig } from '../config/schema.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Gauge } from '../observability/metrics.js';
import type { SidecarMetrics } from '../observability/catalogue.js';
import { HealthState } from '../policies/health/health-state.js';
import { OutlierDetector, type OutlierEvent, type OutlierOutcome } from '../policies/outlier/outlier.js';
import type { Connector } from '../upstream/connector.js';
import { HealthChecker, later } from './health-checker.js';

/** One endpoint's state in one cluster, shared by every snapshot whose cluster of that name has that address. */
export class EndpointRecord {
  readonly address: string;
  /** Active health state; undefined when the cluster has no health_check. */
  health: HealthState | undefined;
  /** Ejections so far (for /clusters). */
  ejections = 0;
  /** Neither unhealthy nor ejected; recomputed by the clusters when `ClusterState.changes` moves. */
  routable = true;
  healthyGauge: Gauge | undefined;
  refs = 0;

  constructor(address: string) {
    this.address = address;
  }
}

export interface ClusterStateDeps {
  readonly metrics?: SidecarMetrics | undefined;
  readonly clock: Clock;
  readonly connector?: Connector | undefined;
}

/**
 * The per-cluster-name state. Each new snapshot's cluster calls configure() with its config; the newest settings win:
 * - health_check unchanged: nothing restarts. Changed: probes restart with the new settings, but each endpoint keeps
 *   its last known status (a dead endpoint stays unhealthy until the new probes pass); removed: health state is dropped.
 * - outlier_detection unchanged: ejections and counters carry on. Changed or removed: detection starts afresh
 *   (current ejections end), as the old thresholds no longer describe what an ejection means.
 */
export class ClusterState {
  readonly name: string;
  /** Moves whenever an endpoint's health or ejection changes; clusters recompute routability when it does. */
  changes = 0;
  refs = 0;
  readonly #records = new Map<string, EndpointRecord>();
  #deps: ClusterStateDeps = { clock: systemClock };
  #outlier: OutlierDetector<string> | undefined;
  #outlierKey: string | undefined;
  #ejectedNow = 0;
  readonly #ejectionTimers = new Set<() => void>();
  #checker: HealthChecker | undefined;
  #healthKey: string | undefined;
  /**
   * The last set a network discovery source (dns, etcd) delivered, and which discovery settings it came from: a
   * reload's new cluster starts from it instead of empty while its own source makes its first read.
   */
  lastDiscovered: { readonly key: string; readonly endpoints: readonly DiscoveredEndpoint[]; readonly source: string } | undefined;

  constructor(name: string) {
    this.name = name;
  }

  get outlier(): OutlierDetector<string> | undefined {
    return this.#outlier;
  }

  get guarded(): boolean {
    return this.#outlier !== undefined || this.#healthKey !== undefined;
  }

  configure(config: ClusterConfig, deps: ClusterStateDeps): void {
    this.#deps = deps;
    this.#configureOutlier(config.outlier_detection);
    this.#configureHealth(config.health_check);
  }

  /** The record for an address (created on first use); every acquire is matched by one release(). */
  acquire(address: string): EndpointRecord {
    let r = this.#records.get(address);
    if (r === undefined) {
      r = new EndpointRecord(address);
      this.#records.set(address, r);
      const hc = this.#healthSettings;
      if (hc !== undefined) {
        r.health = new HealthState({ healthyThreshold: hc.healthy_threshold, unhealthyThreshold: hc.unhealthy_threshold });
        r.healthyGauge = this.#deps.metrics?.endpointHealthy.get({ cluster: this.name, endpoint: address });
        r.healthyGauge?.set(1); // 'unknown' is routable until probes say otherwise
        this.#checker?.add(address);
      }
      this.#outlier?.addEndpoint(address);
      this.changes++;
    }
    r.refs++;
    return r;
  }

  release(address: string): void {
    const r = this.#records.get(address);
    if (r === undefined || --r.refs > 0) return;
    this.#records.delete(address);
    this.#checker?.remove(address);
    if (this.#outlier !== undefined) {
      if (this.#outlier.isEjected(address)) this.#setEjected(this.#ejectedNow - 1);
      this.#outlier.removeEndpoint(address);
    }
    this.changes++;
  }

  record(address: string, outcome: OutlierOutcome): void {
    this.#outlier?.record(address, outcome);
  }

  isEjected(address: string): boolean {
    return this.#outlier !== undefined && this.#outlier.isEjected(address);
  }

  /** Stops probes and timers: nothing uses this cluster name any more. */
  dispose(): void {
    this.#checker?.stop();
    this.#checker = undefined;
    this.#clearEjectionTimers();
  }

  #healthSettings: ClusterConfig['health_check'];

  #configureHealth(hc: ClusterConfig['health_check']): void {
    const key = hc === undefined ? undefined : JSON.stringify(hc);
    if (key === this.#healthKey) return;
    this.#healthKey = key;
    this.#healthSettings = hc;
    this.#checker?.stop();
    this.#checker = undefined;
    this.changes++;
    const metrics = this.#deps.metrics;
    if (hc === undefined) {
      for (const r of this.#records.values()) r.health = undefined;
      return;
    }
    for (const r of this.#records.values()) {
      // New thresholds, same knowledge: the last known status carries over (see the class comment).
      r.health = new HealthState({ healthyThreshold: hc.healthy_threshold, unhealthyThreshold: hc.unhealthy_threshold, initialState: r.health?.state ?? 'unknown' });
      r.healthyGauge = metrics?.endpointHealthy.get({ cluster: this.name, endpoint: r.address });
      r.healthyGauge?.set(r.health.routable ? 1 : 0);
    }
    const checks = metrics
      ? { success: metrics.healthChecks.get({ cluster: this.name, result: 'success' }), failure: metrics.healthChecks.get({ cluster: this.name, result: 'failure' }) }
      : undefined;
    this.#checker = new HealthChecker(
      [...this.#records.keys()],
      { path: hc.path, intervalMs: hc.interval, jitterRatio: hc.interval_jitter / 100, timeoutMs: hc.timeout, expectedStatuses: hc.expected_statuses, host: hc.host },
      (address, ok) => {
        (ok ? checks?.success : checks?.failure)?.inc();
        const r = this.#records.get(address);
        if (r?.health === undefined) return;
        if (r.health.record(ok).changed) {
          r.healthyGauge?.set(r.health.routable ? 1 : 0);
          this.changes++;
        }
      },
      this.#deps.connector,
      this.#deps.clock,
    );
    this.#checker.start();
  }

  #configureOutlier(od: ClusterConfig['outlier_detection']): void {
    const key = od === undefined ? undefined : JSON.stringify(od);
    if (key === this.#outlierKey) return;
    this.#outlierKey = key;
    this.#clearEjectionTimers();
    this.#outlier = undefined;
    this.changes++;
    for (const r of this.#records.values()) r.ejections = 0;
    if (od === undefined) {
      this.#setEjected(0);
      return;
    }
    const outlier = new OutlierDetector<string>(
      {
        consecutive5xx: od.consecutive_5xx,
        consecutiveGatewayFailure: od.consecutive_gateway_failure,
        intervalMs: od.interval,
        baseEjectionTimeMs: od.base_ejection_time,
        maxEjectionTimeMs: od.max_ejection_time,
        maxEjectionPercent: od.max_ejection_percent,
        alwaysEjectOneHost: od.always_eject_one,
      },
      this.#deps.clock,
      0,
    );
    for (const a of this.#records.keys()) outlier.addEndpoint(a);
    this.#outlier = outlier;
    this.#setEjected(0);
    outlier.on((ev) => this.#onOutlierEvent(ev));
  }

  #setEjected(n: number): void {
    this.#ejectedNow = n;
    this.#deps.metrics?.outlierEjected.get({ cluster: this.name }).set(n);
  }

  #onOutlierEvent(ev: OutlierEvent<string>): void {
    if (ev.type === 'eject') {
      const r = this.#records.get(ev.endpoint);
      if (r !== undefined) r.ejections++;
      this.#setEjected(this.#ejectedNow + 1);
      this.#deps.metrics?.outlierEjections.get({ cluster: this.name, reason: ev.reason }).inc();
      this.changes++;
      // Bring it back on time even when no request comes to notice (ejections also expire lazily on reads).
      const outlier = this.#outlier;
      const cancel = later(this.#deps.clock, () => {
        this.#ejectionTimers.delete(cancel);
        outlier?.tick();
      }, ev.durationMs + 1);
      this.#ejectionTimers.add(cancel);
    } else if (ev.type === 'uneject') {
      this.#setEjected(this.#ejectedNow - 1);
      this.changes++;
    }
  }

  #clearEjectionTimers(): void {
    for (const cancel of this.#ejectionTimers) cancel();
    this.#ejectionTimers.clear();
  }
}

/** Cluster states by name, shared by every snapshot of one sidecar (as the UpstreamRegistry shares pools). */
export class ClusterStateRegistry {
  readonly #states = new Map<string, ClusterState>();

  /** The state of that cluster name, (re)configured with the newest config. */
  acquire(config: ClusterConfig, deps: ClusterStateDeps): ClusterState {
    let s = this.#states.get(config.name);
    if (s === undefined) this.#states.set(config.name, (s = new ClusterState(config.name)));
    s.refs++;
    s.configure(config, deps);
    return s;
  }

  release(state: ClusterState): void {
    if (--state.refs > 0) return;
    if (this.#states.get(state.name) === state) this.#states.delete(state.name);
    state.dispose();
  }
}
