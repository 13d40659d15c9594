// A small Prometheus registry built for the hot path: series are resolved once at config build time,
// so recording is a property increment, not a label lookup.

export type Labels = Readonly<Record<string, string>>;

const DEFAULT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

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
type Kind = 'counter' | 'gauge' | 'histogram';

class Family<M extends Metric> {
  readonly series = new Map<string, { labels: Labels; metric: M }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly kind: Kind,
    readonly make: () => M,
    /** Computed at scrape time (gauges read from live state). */
    readonly collect?: () => Iterable<[Labels, number]>,
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

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function formatLabels(labels: Labels, extra?: string): string {
  const parts: string[] = [];
  for (const k of Object.keys(labels)) parts.push(`${k}="${escapeLabel(labels[k]!)}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(',')}}` : '';
}

const num = (v: number): string => (Number.isFinite(v) ? String(v) : v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN');

export class MetricsRegistry {
  readonly #families = new Map<string, Family<Metric>>();

  counter(name: string, help: string, collect?: () => Iterable<[Labels, number]>): Family<Counter> {
    return this.#family(name, help, 'counter', () => new Counter(), collect);
  }

  gauge(name: string, help: string, collect?: () => Iterable<[Labels, number]>): Family<Gauge> {
    return this.#family(name, help, 'gauge', () => new Gauge(), collect);
  }

  histogram(name: string, help: string, buckets: readonly number[] = DEFAULT_BUCKETS): Family<Histogram> {
    return this.#family(name, help, 'histogram', () => new Histogram(buckets));
  }

  #family<M extends Metric>(name: string, help: string, kind: Kind, make: () => M, collect?: () => Iterable<[Labels, number]>): Family<M> {
    const existing = this.#families.get(name);
    if (existing) {
      if (existing.kind !== kind) throw new Error(`metric ${name} registered as ${existing.kind}`);
      return existing as unknown as Family<M>;
    }
    const f = new Family<M>(name, help, kind, make, collect);
    this.#families.set(name, f as unknown as Family<Metric>);
    return f;
  }

  /** Prometheus text exposition format 0.0.4. */
  render(): string {
    const out: string[] = [];
    for (const f of this.#families.values()) {
      out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.kind}`);
      if (f.collect) {
        for (const [labels, v] of f.collect()) out.push(`${f.name}${formatLabels(labels)} ${num(v)}`);
      }
      for (const { labels, metric } of f.series.values()) {
        if (metric instanceof Histogram) {
          let cumulative = 0;
          for (let i = 0; i < metric.buckets.length; i++) {
            cumulative += metric.counts[i]!;
            out.push(`${f.name}_bucket${formatLabels(labels, `le="${metric.buckets[i]}"`)} ${cumulative}`);
          }
          out.push(`${f.name}_bucket${formatLabels(labels, 'le="+Inf"')} ${metric.count}`);
          out.push(`${f.name}_sum${formatLabels(labels)} ${num(metric.sum)}`);
          out.push(`${f.name}_count${formatLabels(labels)} ${metric.count}`);
        } else {
          out.push(`${f.name}${formatLabels(labels)} ${num(metric.value)}`);
        }
      }
    }
    return `${out.join('\n')}\n`;
  }
}
