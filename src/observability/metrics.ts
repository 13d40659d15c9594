// A small Prometheus registry built for the hot path: series are resolved once at config build time,
// so recording is a property increment, not a label lookup.

import { render as renderFamilies, unitOf, type Family as ExpositionFamily, type Format, type Sample } from './exposition.js';

export type Labels = Readonly<Record<string, string>>;

export const DEFAULT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class Counter {
  value = 0;
  inc(n = 1): void {
    this.value += n;
  }
}

export class Gauge {
  value = 0;
  inc(n = 1): void {
    this.value += n;
  }
  dec(n = 1): void {
    this.value -= n;
  }
  set(v: number): void {
    this.value = v;
  }
}

export class Histogram {
  readonly buckets: readonly number[];
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(buckets: readonly number[]) {
    this.buckets = buckets;
    this.counts = new Float64Array(buckets.length);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    const b = this.buckets;
    // Non-cumulative per bucket; cumulated at exposition time.
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

type Metric = Counter | Gauge | Histogram;
export type Kind = 'counter' | 'gauge' | 'histogram' | 'summary';

/** A summary computed at scrape time: quantiles over the collector's own window, sum and count since start. */
export interface SummaryValue {
  readonly quantiles: ReadonlyArray<readonly [number, number]>;
  readonly sum: number;
  readonly count: number;
}

type Collected = Iterable<[Labels, number]> | Iterable<[Labels, Histogram]> | Iterable<[Labels, SummaryValue]>;

class Family<M extends Metric> {
  readonly series = new Map<string, { labels: Labels; metric: M }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly kind: Kind,
    readonly make: () => M,
    /** Computed at scrape time (gauges read from live state). */
    readonly collect?: () => Collected,
  ) {}

  get(labels: Labels = {}): M {
    const key = labelKey(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { labels, metric: this.make() };
      this.series.set(key, s);
    }
    return s.metric;
  }
}

const labelKey = (labels: Labels): string => {
  let k = '';
  for (const name of Object.keys(labels).sort()) k += `${name}=${labels[name]}\u0000`;
  return k;
};

/** What a family is, for docs and checks (the catalogue adds its labels). */
export interface FamilyInfo {
  readonly name: string;
  readonly kind: Kind;
  readonly help: string;
}

export class MetricsRegistry {
  readonly #families = new Map<string, Family<Metric>>();

  counter(name: string, help: string, collect?: () => Iterable<[Labels, number]>): Family<Counter> {
    return this.#family(name, help, 'counter', () => new Counter(), collect);
  }

  gauge(name: string, help: string, collect?: () => Iterable<[Labels, number]>): Family<Gauge> {
    return this.#family(name, help, 'gauge', () => new Gauge(), collect);
  }

  /** `collect`: histograms that live elsewhere (per endpoint), read at scrape time beside the family's own series. */
  histogram(name: string, help: string, buckets: readonly number[] = DEFAULT_BUCKETS, collect?: () => Iterable<[Labels, Histogram]>): Family<Histogram> {
    return this.#family(name, help, 'histogram', () => new Histogram(buckets), collect);
  }

  /** A summary has no recorded series: it is all computed at scrape time. */
  summary(name: string, help: string, collect: () => Iterable<[Labels, SummaryValue]>): void {
    this.#family(name, help, 'summary', () => new Gauge(), collect);
  }

  #family<M extends Metric>(name: string, help: string, kind: Kind, make: () => M, collect?: () => Collected): Family<M> {
    const existing = this.#families.get(name);
    if (existing) {
      if (existing.kind !== kind) throw new Error(`metric ${name} registered as ${existing.kind}`);
      return existing as unknown as Family<M>;
    }
    const f = new Family<M>(name, help, kind, make, collect);
    this.#families.set(name, f as unknown as Family<Metric>);
    return f;
  }

  /** Every family registered, in registration order. */
  describe(): FamilyInfo[] {
    return [...this.#families.values()].map((f) => ({ name: f.name, kind: f.kind, help: f.help }));
  }

  /** The current value of every series, as exposition families (scrape time: collect hooks run here). */
  families(): ExpositionFamily[] {
    const out: ExpositionFamily[] = [];
    for (const f of this.#families.values()) {
      const samples: Sample[] = [];
      if (f.kind === 'histogram') {
        if (f.collect) for (const [labels, h] of f.collect() as Iterable<[Labels, Histogram]>) histogramSamples(f.name, labels, h, samples);
        for (const { labels, metric } of f.series.values()) histogramSamples(f.name, labels, metric as Histogram, samples);
      } else if (f.kind === 'summary') {
        for (const [labels, v] of f.collect!() as Iterable<[Labels, SummaryValue]>) {
          for (const [q, value] of v.quantiles) samples.push({ name: f.name, labels: { ...labels, quantile: String(q) }, value });
          samples.push({ name: `${f.name}_sum`, labels, value: v.sum }, { name: `${f.name}_count`, labels, value: v.count });
        }
      } else {
        if (f.collect) for (const [labels, value] of f.collect() as Iterable<[Labels, number]>) samples.push({ name: f.name, labels, value });
        for (const { labels, metric } of f.series.values()) samples.push({ name: f.name, labels, value: (metric as Counter | Gauge).value });
      }
      // Counters are named with _total (the catalogue's rule); the OpenMetrics family name goes without.
      const name = f.kind === 'counter' && f.name.endsWith('_total') ? f.name.slice(0, -6) : f.name;
      out.push({ name, type: f.kind, help: f.help, unit: unitOf(name), samples });
    }
    return out;
  }

  /** Prometheus text exposition format 0.0.4 (default) or OpenMetrics 1.0.0. */
  render(format: Format = 'prometheus'): string {
    return renderFamilies(this.families(), format);
  }
}

function histogramSamples(name: string, labels: Labels, h: Histogram, out: Sample[]): void {
  let cumulative = 0;
  for (let i = 0; i < h.buckets.length; i++) {
    cumulative += h.counts[i]!;
    out.push({ name: `${name}_bucket`, labels: { ...labels, le: String(h.buckets[i]) }, value: cumulative });
  }
  out.push({ name: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: h.count });
  out.push({ name: `${name}_sum`, labels, value: h.sum }, { name: `${name}_count`, labels, value: h.count });
}
