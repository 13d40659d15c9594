// Per-endpoint upstream series, bounded: the first `max` endpoints (across clusters) get series of their own, the rest
// count under endpoint="other" of their cluster. Requests, failures and active counts are the pools' own counters, read
// at scrape time; only the latency histogram is recorded per attempt (one observe into a histogram fixed at endpoint
// creation). A slot, once given, stays with its endpoint while any snapshot holds it (no series moves to "other").
import { DEFAULT_BUCKETS, Histogram, type Labels } from './metrics.js';

/** The pool counters of one (cluster, endpoint): the registry's EndpointStats. */
export interface EndpointCounters {
  readonly requests: number;
  readonly failures: number;
  readonly active: number;
}

export interface EndpointSeriesHandle {
  /** Time to the response head of each attempt; undefined when per-endpoint series are off. */
  readonly latency: Histogram | undefined;
  release(): void;
}

interface Entry {
  readonly cluster: string;
  readonly address: string;
  /** The endpoint label: the address, or "other" past the cap. */
  readonly endpoint: string;
  counters: EndpointCounters;
  connections: () => number;
  readonly latency: Histogram;
  refs: number;
}

export const OTHER_ENDPOINT = 'other';

export class EndpointSeries {
  #max: number;
  readonly #entries = new Map<string, Entry>();
  /** The folded endpoints' latency, one histogram per cluster (kept: a counter-like series must not go back). */
  readonly #other = new Map<string, Histogram>();
  /** Requests and failures of folded endpoints that went away, so the "other" counters never go back. */
  readonly #carried = new Map<string, { requests: number; failures: number }>();
  #own = 0;

  constructor(max = 100) {
    this.#max = max;
  }

  /** admin.metrics.max_endpoint_series: applies to endpoints acquired from now on. */
  set max(n: number) {
    this.#max = n;
  }

  get max(): number {
    return this.#max;
  }

  /** Endpoints counted under endpoint="other" right now. */
  get folded(): number {
    return this.#entries.size - this.#own;
  }

  acquire(cluster: string, address: string, counters: EndpointCounters, connections: () => number): EndpointSeriesHandle {
    const key = `${cluster}\u0000${address}`;
    let e = this.#entries.get(key);
    if (e === undefined) {
      if (this.#max === 0) return { latency: undefined, release: () => {} };
      const own = this.#own < this.#max;
      let latency: Histogram;
      if (own) {
        this.#own++;
        latency = new Histogram(DEFAULT_BUCKETS);
      } else {
        latency = this.#other.get(cluster) ?? new Histogram(DEFAULT_BUCKETS);
        this.#other.set(cluster, latency);
      }
      e = { cluster, address, endpoint: own ? address : OTHER_ENDPOINT, counters, connections, latency, refs: 0 };
      this.#entries.set(key, e);
    }
    // A newer snapshot's pool (protocol or TLS changed) counts from now on.
    e.counters = counters;
    e.connections = connections;
    e.refs++;
    const entry = e;
    let released = false;
    return {
      latency: entry.latency,
      release: () => {
        if (released) return;
        released = true;
        if (--entry.refs > 0) return;
        this.#entries.delete(key);
        if (entry.endpoint !== OTHER_ENDPOINT) this.#own--;
        else {
          const c = this.#carried.get(cluster) ?? { requests: 0, failures: 0 };
          c.requests += entry.counters.requests;
          c.failures += entry.counters.failures;
          this.#carried.set(cluster, c);
        }
      },
    };
  }

  /** Sums per (cluster, endpoint label) of one count, at scrape time. */
  collect(what: 'requests' | 'failures' | 'active' | 'connections'): Array<[Labels, number]> {
    const read = (e: Entry): number => (what === 'connections' ? e.connections() : e.counters[what]);
    const sums = new Map<string, [Labels, number]>();
    if (what === 'requests' || what === 'failures') {
      for (const [cluster, c] of this.#carried) sums.set(`${cluster}\u0000${OTHER_ENDPOINT}`, [{ cluster, endpoint: OTHER_ENDPOINT }, c[what]]);
    }
    for (const e of this.#entries.values()) {
      const key = `${e.cluster}\u0000${e.endpoint}`;
      const s = sums.get(key);
      if (s === undefined) sums.set(key, [{ cluster: e.cluster, endpoint: e.endpoint }, read(e)]);
      else s[1] += read(e);
    }
    return [...sums.values()];
  }

  /**
   * Attempts sent to every endpoint counted here (retries and hedges included), for the dashboard's upstream rate;
   * undefined when per-endpoint series are off (max_endpoint_series: 0). Drops when a counted endpoint goes away.
   */
  totalRequests(): number | undefined {
    if (this.#max === 0 && this.#entries.size === 0) return undefined;
    let n = 0;
    for (const c of this.#carried.values()) n += c.requests;
    for (const e of this.#entries.values()) n += e.counters.requests;
    return n;
  }

  /** Latency histograms: own ones of live endpoints, and each cluster's "other". */
  *histograms(): Iterable<[Labels, Histogram]> {
    for (const e of this.#entries.values()) if (e.endpoint !== OTHER_ENDPOINT) yield [{ cluster: e.cluster, endpoint: e.endpoint }, e.latency];
    for (const [cluster, h] of this.#other) yield [{ cluster, endpoint: OTHER_ENDPOINT }, h];
  }
}
