// Process and Node.js runtime health, read when /metrics is scraped (nothing per request). Names follow the Prometheus
// client libraries (process_*, nodejs_*) so existing dashboards and alerts apply. The event-loop delay monitor and the
// GC observer run only between start() and stop().
import { readdirSync, readFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance, PerformanceObserver, type EventLoopUtilization, type IntervalHistogram, type PerformanceEntry } from 'node:perf_hooks';
import type { Histogram, Labels, MetricsRegistry, SummaryValue } from './metrics.js';

const GC_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const LAG_QUANTILES = [0.5, 0.9, 0.99] as const;
const RESOLUTION_MS = 10;

/** node's gc entry `detail.kind` (NODE_PERFORMANCE_GC_*) as a label value. */
const GC_KINDS: Readonly<Record<number, string>> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };

/** Soft limit of open files from /proc/self/limits, or undefined off Linux. */
export function maxFds(limits: string): number | undefined {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
  if (!m) return undefined;
  return m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

const readOr = <T>(f: () => T): T | undefined => {
  try {
    return f();
  } catch {
    return undefined;
  }
};

export class ProcessMetrics {
  /** Wall-clock start of the process (seconds), once. */
  readonly #startTime = Math.floor(performance.timeOrigin / 1000);
  #delay: IntervalHistogram | undefined;
  #gc: PerformanceObserver | undefined;
  /** Event-loop delay quantiles of the last window (kept while a window saw no sample), and totals since start. */
  #lag: SummaryValue = { quantiles: LAG_QUANTILES.map((q) => [q, 0] as const), sum: 0, count: 0 };
  #lagMax = 0;
  #elu: EventLoopUtilization | undefined;
  #utilization = 0;
  readonly #gcHistogram: { get(labels: Labels): Histogram };
  #enabled = false;

  constructor(registry: MetricsRegistry) {
    const on = <T>(f: () => Iterable<T>): (() => Iterable<T>) => () => (this.#enabled ? f() : []);
    registry.counter('process_cpu_user_seconds_total', 'User CPU time the process spent, in seconds.', on(() => [[{}, process.cpuUsage().user / 1e6]]));
    registry.counter('process_cpu_system_seconds_total', 'System CPU time the process spent, in seconds.', on(() => [[{}, process.cpuUsage().system / 1e6]]));
    registry.counter('process_cpu_seconds_total', 'User and system CPU time the process spent, in seconds.', on(() => {
      const u = process.cpuUsage();
      return [[{}, (u.user + u.system) / 1e6]];
    }));
    registry.gauge('process_resident_memory_bytes', 'Resident memory size, in bytes.', on(() => [[{}, process.memoryUsage.rss()]]));
    registry.gauge('process_open_fds', 'Open file descriptors (Linux: /proc/self/fd).', on(() => {
      // The directory listing holds one descriptor of its own.
      const n = readOr(() => readdirSync('/proc/self/fd').length - 1);
      return n === undefined ? [] : [[{}, n]];
    }));
    registry.gauge('process_max_fds', 'The soft limit of open file descriptors (Linux: /proc/self/limits).', on(() => {
      const n = readOr(() => maxFds(readFileSync('/proc/self/limits', 'utf8')));
      return n === undefined ? [] : [[{}, n]];
    }));
    registry.gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch, in seconds.', on(() => [[{}, this.#startTime]]));
    registry.summary(
      'nodejs_eventloop_lag_seconds',
      'Event-loop delay (perf_hooks monitorEventLoopDelay, 10 ms resolution): quantiles over the time since the previous scrape; sum and count since start.',
      on(() => [[{}, this.#readLag()]]),
    );
    // Read after the summary above, which moves the window on.
    registry.gauge('nodejs_eventloop_lag_max_seconds', 'Longest event-loop delay since the previous scrape, in seconds.', on(() => [[{}, this.#lagMax]]));
    registry.gauge('nodejs_eventloop_utilization_ratio', 'Share of time the event loop was busy (0 to 1) since the previous scrape.', on(() => [[{}, this.#readUtilization()]]));
    registry.gauge('nodejs_active_handles', 'Active libuv handles and requests keeping the loop alive, by type (process.getActiveResourcesInfo).', on(() => {
      const by = new Map<string, number>();
      for (const t of process.getActiveResourcesInfo()) by.set(t, (by.get(t) ?? 0) + 1);
      return Array.from(by, ([type, n]): [Labels, number] => [{ type }, n]);
    }));
    registry.gauge('nodejs_heap_size_used_bytes', 'V8 heap in use, in bytes.', on(() => [[{}, process.memoryUsage().heapUsed]]));
    registry.gauge('nodejs_heap_size_total_bytes', 'V8 heap allocated, in bytes.', on(() => [[{}, process.memoryUsage().heapTotal]]));
    registry.gauge('nodejs_external_memory_bytes', 'Memory of C++ objects bound to JavaScript objects (buffers included), in bytes.', on(() => [[{}, process.memoryUsage().external]]));
    const gc = registry.histogram('nodejs_gc_duration_seconds', 'Garbage-collection pauses, by kind (minor, major, incremental, weakcb), in seconds.', GC_BUCKETS);
    this.#gcHistogram = gc;
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  /** Starts the event-loop monitor and the GC observer (idempotent). */
  start(): void {
    if (this.#enabled) return;
    this.#enabled = true;
    const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    delay.enable();
    this.#delay = delay;
    this.#elu = performance.eventLoopUtilization();
    const gc = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = GC_KINDS[(e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? 0] ?? 'other';
        this.#gcHistogram.get({ kind }).observe(e.duration / 1000);
      }
    });
    gc.observe({ entryTypes: ['gc'] });
    this.#gc = gc;
  }

  stop(): void {
    if (!this.#enabled) return;
    this.#enabled = false;
    this.#delay?.disable();
    this.#delay = undefined;
    this.#gc?.disconnect();
    this.#gc = undefined;
  }

  /** Quantiles of the delays since the previous read (the monitor is reset), totals carried on. */
  #readLag(): SummaryValue {
    const h = this.#delay;
    if (h === undefined || h.count === 0) return this.#lag;
    // The monitor reports nanoseconds between its timer's runs: the delay is what exceeds the resolution.
    const lag = (ns: number): number => Math.max(0, ns - RESOLUTION_MS * 1e6) / 1e9;
    const quantiles = LAG_QUANTILES.map((q) => [q, lag(h.percentile(q * 100))] as const);
    this.#lag = { quantiles, sum: this.#lag.sum + lag(h.mean) * h.count, count: this.#lag.count + h.count };
    this.#lagMax = lag(h.max);
    h.reset();
    return this.#lag;
  }

  #readUtilization(): number {
    const prev = this.#elu;
    if (prev === undefined) return 0;
    const now = performance.eventLoopUtilization();
    const window = performance.eventLoopUtilization(now, prev);
    // A window too short to mean anything (two scrapes close together) keeps the last value.
    if (window.idle + window.active >= 100) {
      this.#utilization = window.utilization;
      this.#elu = now;
    }
    return this.#utilization;
  }
}
