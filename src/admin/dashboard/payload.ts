// The dashboard's per-second payload: a pure function over a latency-history snapshot, the debug rings and the
// previous tick's totals (for requests per second), so it is unit-tested without sockets or a clock.
import type { MinutePoint, QuantileSet, SeriesKind } from '../../observability/latency-history.js';
import type { DebugRecord } from '../../observability/request-debug.js';

export type HistorySnapshot = Record<SeriesKind, Record<string, { window: QuantileSet; minutes: MinutePoint[] }>>;

/** Every answer the sidecar gave, and those that failed (5xx, 499, or a response flag), since it started. */
export interface Answers {
  readonly answered: number;
  readonly failed: number;
}

/**
 * The share of answers that did not fail, over the window since `windowStart` (the dashboard keeps ten ticks), from
 * the counters; undefined when nothing was answered in it. Without counters, from the recorded requests (biased:
 * the failed ring keeps its records longer).
 */
function successRate(all: readonly DebugRecord[], answers: Answers | undefined, windowStart: Totals | undefined): number | undefined {
  if (answers !== undefined) {
    // No tick before this one (a browser's first): no window yet. Counting from the start would give the whole
    // run's rate under a "last 10 s" label.
    if (windowStart?.answered === undefined) return undefined;
    const n = answers.answered - windowStart.answered;
    return n > 0 ? (n - (answers.failed - (windowStart.failed ?? 0))) / n : undefined;
  }
  return all.length === 0 ? undefined : (all.length - all.filter((r) => r.failed).length) / all.length;
}

export interface Totals {
  /** Requests the app sent (sum over listeners of the window counts). */
  app: number;
  /**
   * Requests as upstreams saw them (attempts, retries and hedges included): the per-endpoint attempt counters, or
   * without them (max_endpoint_series: 0) an estimate from the recorded requests' attempt counts.
   */
  upstream: number;
  at: number;
  /** The answer counters at this tick (Answers), when the source has them. */
  answered?: number | undefined;
  failed?: number | undefined;
}

export interface RecentRequest {
  id: string;
  status: number;
  durationMs: number;
  flag: string | undefined;
  method: string;
  path: string;
  route: string;
  cluster: string;
  attempts: number;
}

export interface DashboardPayload {
  at: number;
  rps: { app: number; upstream: number };
  successRate: number | undefined;
  /** Seconds the success rate covers (up to 10; 0 on a browser's first tick, when there is no window yet). */
  successWindowS: number;
  series: Record<SeriesKind, { name: string; window: QuantileSet; minutes: MinutePoint[] }[]>;
  /** admin.latency_history.enabled is false: no series are kept, which the page says instead of "no traffic yet". */
  historyOff?: true;
  clusters: unknown;
  slowest: RecentRequest[];
  failed: RecentRequest[];
  totals: Totals;
}

const brief = (r: DebugRecord): RecentRequest => ({
  id: r.id,
  status: r.status,
  durationMs: r.durationMs,
  flag: r.flag,
  method: r.method,
  path: `${r.authority}${r.path}`,
  route: r.route,
  cluster: r.cluster,
  attempts: r.attemptCount,
});

/** Builds one tick. `prev` is the last tick's totals (undefined on the first: rps 0). */
export function buildPayload(
  snap: HistorySnapshot,
  debug: { failed: DebugRecord[]; recent: DebugRecord[] },
  clusters: unknown,
  prev: Totals | undefined,
  now: number,
  limit = 10,
  upstreamAttempts?: number,
  answers?: Answers,
  windowStart?: Totals,
): DashboardPayload {
  let app = 0;
  for (const s of Object.values(snap.listener)) app += s.window.count;
  const all = [...debug.failed, ...debug.recent];
  let upstream = upstreamAttempts;
  if (upstream === undefined) {
    // Attempts beyond the first are the retries and hedges upstreams saw on top of the app's requests.
    let extra = 0;
    for (const r of all) extra += Math.max(0, r.attemptCount - 1);
    upstream = app + extra;
  }
  const dt = prev ? (now - prev.at) / 1000 : 0;
  const rate = (a: number, b: number): number => (dt > 0 ? Math.max(0, (a - b) / dt) : 0);
  const rps = prev ? { app: rate(app, prev.app), upstream: rate(upstream, prev.upstream) } : { app: 0, upstream: 0 };
  const failed = debug.failed.filter((r) => r.failed);
  const series = { listener: [], route: [], cluster: [], endpoint: [] } as DashboardPayload['series'];
  for (const kind of Object.keys(series) as SeriesKind[]) {
    for (const [name, s] of Object.entries(snap[kind])) series[kind].push({ name, window: s.window, minutes: s.minutes });
  }
  return {
    at: now,
    rps,
    successRate: successRate(all, answers, windowStart),
    successWindowS: answers === undefined ? 0 : windowStart?.answered === undefined ? 0 : Math.round((now - windowStart.at) / 1000),
    series,
    clusters,
    slowest: [...all].sort((a, b) => b.durationMs - a.durationMs).slice(0, limit).map(brief),
    failed: failed.slice(0, limit).map(brief),
    totals: { app, upstream, at: now, answered: answers?.answered, failed: answers?.failed },
  };
}
