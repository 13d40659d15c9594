// Latency history for the admin views: a log-linear histogram per minute, kept in a ring of the last 15 minutes,
// per listener, route, cluster and endpoint. Memory is bounded and known: series x minutes x buckets x 8 bytes
// (394 buckets at 2% relative error: about 3.2 KB per minute slot, 47 KB per series over 15 minutes; a slot is only
// allocated when a request lands in it). See docs/adr/0007-latency-histograms.md.
import type { Clock } from '../core/clock.js';
import { type BucketLayout, LatencyHistogram } from '../policies/latency/histogram.js';

export type SeriesKind = 'listener' | 'route' | 'cluster' | 'endpoint';

export interface LatencyHistoryOptions {
  /** Minutes kept (the ring's length). Default 15. */
  readonly minutes?: number;
  /** Series kept at most; past it new names are counted in `dropped` and not recorded. Default 512. */
  readonly maxSeries?: number;
  /** Relative error of every quantile. Default 0.02. */
  readonly relativeError?: number;
}

export interface QuantileSet {
  count: number;
  p50: number | undefined;
  p90: number | undefined;
  p99: number | undefined;
  p999: number | undefined;
}

/** One minute of one series. */
export interface MinutePoint extends QuantileSet {
  /** Unix-style minute number on the history's clock (clock ms / 60 000, floored). */
  minute: number;
}

const MINUTE = 60_000;

class Series {
  readonly slots: (LatencyHistogram | undefined)[];
  readonly minuteOf: number[];
  constructor(minutes: number) {
    this.slots = new Array<LatencyHistogram | undefined>(minutes);
    this.minuteOf = new Array<number>(minutes).fill(-1);
  }
}

const KINDS = ['listener', 'route', 'cluster', 'endpoint'] as const;

export class LatencyHistory {
  readonly minutes: number;
  readonly maxSeries: number;
  readonly relativeError: number;
  /** Series not recorded because maxSeries was reached. */
  dropped = 0;
  /** admin.latency_history.enabled: read by the exchange before it calls record(), so off costs one branch. */
  enabled = true;
  // Two-level maps (outer name, inner name) per kind rather than one map of joined keys: record() runs once per
  // request, and a joined key would be a fresh string to build and hash four times per request.
  readonly #byKind: Record<SeriesKind, Map<string, Map<string, Series>>> = { listener: new Map(), route: new Map(), cluster: new Map(), endpoint: new Map() };
  #count = 0;
  readonly #clock: Pick<Clock, 'now'>;
  readonly #layout: BucketLayout;

  constructor(clock: Pick<Clock, 'now'>, options: LatencyHistoryOptions = {}) {
    this.#clock = clock;
    this.minutes = options.minutes ?? 15;
    this.maxSeries = options.maxSeries ?? 512;
    this.relativeError = options.relativeError ?? 0.02;
    if (!(this.minutes >= 1 && Number.isInteger(this.minutes))) throw new RangeError(`minutes must be a positive integer, got ${this.minutes}`);
    this.#layout = new LatencyHistogram({ relativeError: this.relativeError }).layout;
  }

  /** Records one request's latency (ms) into its listener, route, cluster and endpoint series. */
  record(listener: string, route: string, cluster: string, endpoint: string, ms: number): void {
    if (Number.isNaN(ms)) return;
    const v = ms > 0 ? ms : 0;
    const minute = Math.floor(this.#clock.now() / MINUTE);
    const slot = this.#layout.slotOf(v);
    const last = this.#last;
    if (listener !== last.listener || route !== last.route || cluster !== last.cluster || endpoint !== last.endpoint || !last.found) this.#resolve(listener, route, cluster, endpoint);
    this.#add(last.l, minute, slot, v);
    this.#add(last.r, minute, slot, v);
    this.#add(last.c, minute, slot, v);
    this.#add(last.e, minute, slot, v);
  }

  /**
   * The four series of the last request, kept: most requests repeat the names of the one before, and four two-level
   * map lookups per request cost more than the four histogram updates. Not kept when a series was refused (maxSeries):
   * each such request is counted in `dropped`, as before.
   */
  readonly #last = { listener: '', route: '', cluster: '', endpoint: '', found: false, l: undefined as Series | undefined, r: undefined as Series | undefined, c: undefined as Series | undefined, e: undefined as Series | undefined };

  #resolve(listener: string, route: string, cluster: string, endpoint: string): void {
    const last = this.#last;
    last.listener = listener;
    last.route = route;
    last.cluster = cluster;
    last.endpoint = endpoint;
    last.l = this.#series('listener', listener, '');
    last.r = route === '' ? undefined : this.#series('route', listener, route);
    last.c = cluster === '' ? undefined : this.#series('cluster', cluster, '');
    last.e = cluster === '' || endpoint === '' ? undefined : this.#series('endpoint', cluster, endpoint);
    last.found = last.l !== undefined && (route === '' || last.r !== undefined) && (cluster === '' || last.c !== undefined) && (cluster === '' || endpoint === '' || last.e !== undefined);
  }

  #series(kind: SeriesKind, outer: string, inner: string): Series | undefined {
    const table = this.#byKind[kind];
    let byInner = table.get(outer);
    let s = byInner?.get(inner);
    if (s !== undefined) return s;
    if (this.#count >= this.maxSeries) {
      this.dropped++;
      return undefined;
    }
    if (byInner === undefined) {
      byInner = new Map();
      table.set(outer, byInner);
    }
    s = new Series(this.minutes);
    byInner.set(inner, s);
    this.#count++;
    return s;
  }

  #add(s: Series | undefined, minute: number, slot: number, v: number): void {
    if (s === undefined) return;
    const i = minute % this.minutes;
    let h = s.slots[i];
    if (!h) {
      h = new LatencyHistogram({ relativeError: this.relativeError });
      s.slots[i] = h;
      s.minuteOf[i] = minute;
    } else if (s.minuteOf[i] !== minute) {
      h.reset();
      s.minuteOf[i] = minute;
    }
    h.recordInSlot(slot, v);
  }

  /** The series of one kind by display name (routes "listener/route", endpoints "cluster/host:port"). */
  #named(kind: SeriesKind): Map<string, Series> {
    const out = new Map<string, Series>();
    for (const [outer, byInner] of this.#byKind[kind]) for (const [inner, s] of byInner) out.set(inner === '' ? outer : `${outer}/${inner}`, s);
    return out;
  }

  #find(kind: SeriesKind, name: string): Series | undefined {
    if (kind === 'listener' || kind === 'cluster') return this.#byKind[kind].get(name)?.get('');
    // A listener or cluster name may itself contain '/': try every split rather than assume the first.
    for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
      const s = this.#byKind[kind].get(name.slice(0, i))?.get(name.slice(i + 1));
      if (s) return s;
    }
    return undefined;
  }

  /** The names of the series of one kind (route names are "listener/route", endpoints "cluster/host:port"). */
  names(kind: SeriesKind): string[] {
    return [...this.#named(kind).keys()].sort();
  }

  /** Quantiles over the last `minutes` minutes (default: the whole ring), merged from the per-minute histograms. */
  window(kind: SeriesKind, name: string, minutes = this.minutes): QuantileSet {
    const s = this.#find(kind, name);
    const now = Math.floor(this.#clock.now() / MINUTE);
    const merged = new LatencyHistogram({ relativeError: this.relativeError });
    if (s) {
      for (let i = 0; i < this.minutes; i++) {
        const h = s.slots[i];
        const m = s.minuteOf[i]!;
        if (h && m > now - Math.min(minutes, this.minutes) && m <= now) merged.merge(h);
      }
    }
    return quantiles(merged);
  }

  /** One point per minute of the ring, oldest first; minutes with no requests have count 0. */
  perMinute(kind: SeriesKind, name: string): MinutePoint[] {
    const s = this.#find(kind, name);
    const now = Math.floor(this.#clock.now() / MINUTE);
    const out: MinutePoint[] = [];
    for (let m = now - this.minutes + 1; m <= now; m++) {
      const i = ((m % this.minutes) + this.minutes) % this.minutes;
      const h = s && s.minuteOf[i] === m ? s.slots[i] : undefined;
      out.push({ minute: m, ...(h ? quantiles(h) : { count: 0, p50: undefined, p90: undefined, p99: undefined, p999: undefined }) });
    }
    return out;
  }

  /** Bytes of bucket counters allocated now (the bound is maxSeries x minutes x that per slot). */
  get bytes(): number {
    let n = 0;
    for (const kind of KINDS) for (const s of this.#named(kind).values()) for (const h of s.slots) if (h) n += h.counts.byteLength;
    return n;
  }

  /** Everything, for admin GET /latency. */
  snapshot(): Record<SeriesKind, Record<string, { window: QuantileSet; minutes: MinutePoint[] }>> {
    const out = { listener: {}, route: {}, cluster: {}, endpoint: {} } as Record<SeriesKind, Record<string, { window: QuantileSet; minutes: MinutePoint[] }>>;
    for (const kind of KINDS) {
      for (const name of this.names(kind)) out[kind][name] = { window: this.window(kind, name), minutes: this.perMinute(kind, name) };
    }
    return out;
  }
}

function quantiles(h: LatencyHistogram): QuantileSet {
  return { count: h.count, p50: h.quantile(0.5), p90: h.quantile(0.9), p99: h.quantile(0.99), p999: h.quantile(0.999) };
}
