// Metric exposition: one model of metric families, rendered as Prometheus text 0.0.4 or OpenMetrics 1.0.0 text (chosen
// from the scraper's Accept header), and parsed back from either (the app's metrics when merging). Pure: no I/O.
import type { Labels } from './metrics.js';

export type FamilyType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'unknown' | 'gaugehistogram' | 'stateset' | 'info';

export interface Sample {
  /** The full sample name (`x_total`, `x_bucket`, `x_sum`...). */
  readonly name: string;
  readonly labels: Labels;
  readonly value: number;
  /** Milliseconds since the epoch, when the source gave one. */
  readonly timestamp?: number | undefined;
}

export interface Family {
  /** The OpenMetrics family name: a counter's without `_total`. */
  readonly name: string;
  readonly type: FamilyType;
  readonly help: string;
  /** OpenMetrics `# UNIT` (the name then ends in `_<unit>`). */
  readonly unit?: string | undefined;
  readonly samples: readonly Sample[];
}

export type Format = 'prometheus' | 'openmetrics';

export const CONTENT_TYPES: Readonly<Record<Format, string>> = {
  prometheus: 'text/plain; version=0.0.4; charset=utf-8',
  openmetrics: 'application/openmetrics-text; version=1.0.0; charset=utf-8',
};

/**
 * The format the Accept header prefers: OpenMetrics when `application/openmetrics-text` (version 1.0.0, or none given)
 * has a higher q than text/plain and wildcards, as Prometheus sends it; Prometheus text otherwise (the default).
 */
export function negotiate(accept: string | undefined): Format {
  if (!accept) return 'prometheus';
  let om = -1;
  let other = -1;
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    let q = 1;
    let version: string | undefined;
    for (const p of params) {
      const eq = p.indexOf('=');
      if (eq < 0) continue;
      const k = p.slice(0, eq).trim();
      const v = p.slice(eq + 1).trim().replace(/^"|"$/g, '');
      if (k === 'q') q = Number(v) || 0;
      else if (k === 'version') version = v;
    }
    if (type === 'application/openmetrics-text') {
      // 0.0.1 (Prometheus 2.x also offers it) has the same text for what the sidecar exports.
      if (version === undefined || version === '1.0.0' || version === '0.0.1') om = Math.max(om, q);
    } else if (type === 'text/plain' || type === '*/*' || type === 'text/*') {
      other = Math.max(other, q);
    }
  }
  return om > 0 && om >= other ? 'openmetrics' : 'prometheus';
}

/** OpenMetrics units the sidecar's names end in (Prometheus naming: base units). */
const UNITS = ['seconds', 'bytes', 'ratio'] as const;

/** The unit a family's name ends in, for `# UNIT` (a counter's name without `_total`). */
export function unitOf(name: string): string | undefined {
  for (const u of UNITS) if (name.endsWith(`_${u}`)) return u;
  return undefined;
}

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
/** 0.0.4 escapes backslash and newline in HELP; OpenMetrics also the double quote. */
const escapeHelp = (v: string, f: Format): string => {
  const s = v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
  return f === 'openmetrics' ? s.replace(/"/g, '\\"') : s;
};

function formatLabels(labels: Labels, f: Format): string {
  let out = '';
  for (const k in labels) {
    let v = labels[k]!;
    // OpenMetrics wants canonical floats for le and quantile ("1.0", not "1"), as the client libraries write them.
    if (f === 'openmetrics' && (k === 'le' || k === 'quantile')) v = canonicalFloat(v);
    out += `${out ? ',' : ''}${k}="${escapeLabel(v)}"`;
  }
  return out ? `{${out}}` : '';
}

function canonicalFloat(v: string): string {
  if (v === '+Inf' || v === '-Inf' || v === 'NaN') return v;
  const n = Number(v);
  if (!Number.isFinite(n)) return v;
  return Number.isInteger(n) && !/e/i.test(String(n)) ? `${n}.0` : String(n);
}

export const formatValue = (v: number): string => (Number.isFinite(v) ? String(v) : v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN');

/** Renders families in one format; OpenMetrics ends with `# EOF`. */
export function render(families: Iterable<Family>, f: Format): string {
  const out: string[] = [];
  for (const fam of families) renderFamily(fam, f, out);
  if (f === 'openmetrics') out.push('# EOF');
  return `${out.join('\n')}\n`;
}

function renderFamily(fam: Family, f: Format, out: string[]): void {
  if (f === 'openmetrics') {
    out.push(`# TYPE ${fam.name} ${fam.type}`);
    if (fam.unit) out.push(`# UNIT ${fam.name} ${fam.unit}`);
    if (fam.help) out.push(`# HELP ${fam.name} ${escapeHelp(fam.help, f)}`);
    for (const s of fam.samples) {
      // A counter sample without `_total` (0.0.4 allows it) gets it: OpenMetrics requires it.
      const name = fam.type === 'counter' && s.name === fam.name ? `${s.name}_total` : s.name;
      const ts = s.timestamp === undefined ? '' : ` ${s.timestamp / 1000}`;
      out.push(`${name}${formatLabels(s.labels, f)} ${formatValue(s.value)}${ts}`);
    }
    return;
  }
  // Prometheus text 0.0.4 has no UNIT, no _created, and no OpenMetrics-only types.
  let typeName = fam.name;
  let type: string | undefined = fam.type;
  if (fam.type === 'counter') typeName = fam.samples.some((s) => s.name === fam.name) ? fam.name : `${fam.name}_total`;
  else if (fam.type === 'unknown') type = 'untyped';
  else if (fam.type === 'info') [typeName, type] = [`${fam.name}_info`, 'gauge'];
  else if (fam.type === 'stateset') type = 'gauge';
  else if (fam.type === 'gaugehistogram') type = undefined; // its samples stay, untyped
  if (type !== undefined) {
    if (fam.help) out.push(`# HELP ${typeName} ${escapeHelp(fam.help, f)}`);
    out.push(`# TYPE ${typeName} ${type}`);
  }
  for (const s of fam.samples) {
    if (s.name.endsWith('_created') && s.name !== fam.name) continue;
    const ts = s.timestamp === undefined ? '' : ` ${Math.round(s.timestamp)}`;
    out.push(`${s.name}${formatLabels(s.labels, f)} ${formatValue(s.value)}${ts}`);
  }
}

/** Sample-name suffixes each family type may use besides its bare name. */
const SUFFIXES: Readonly<Record<FamilyType, readonly string[]>> = {
  counter: ['_total', '_created'],
  gauge: [],
  histogram: ['_bucket', '_count', '_sum', '_created'],
  summary: ['_count', '_sum', '_created'],
  unknown: [],
  gaugehistogram: ['_bucket', '_gcount', '_gsum'],
  stateset: [],
  info: ['_info'],
};

const ALL_SUFFIXES = ['', ...new Set(Object.values(SUFFIXES).flat())];

const TYPES: Readonly<Record<string, FamilyType>> = {
  counter: 'counter',
  gauge: 'gauge',
  histogram: 'histogram',
  summary: 'summary',
  untyped: 'unknown',
  unknown: 'unknown',
  gaugehistogram: 'gaugehistogram',
  stateset: 'stateset',
  info: 'info',
};

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export class ExpositionError extends Error {}

interface Building {
  name: string;
  type: FamilyType;
  help: string;
  unit: string | undefined;
  samples: Sample[];
}

/**
 * Parses Prometheus text 0.0.4 or OpenMetrics text into families (timestamps in ms; exemplars dropped).
 * Throws ExpositionError (with the line number) on anything malformed: a merged exposition is all or nothing.
 */
export function parse(text: string, f: Format): Family[] {
  const families = new Map<string, Building>();
  let current: Building | undefined;
  const family = (name: string): Building => {
    let b = families.get(name);
    if (b === undefined) families.set(name, (b = { name, type: 'unknown', help: '', unit: undefined, samples: [] }));
    return b;
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    const fail = (why: string): never => {
      throw new ExpositionError(`line ${i + 1}: ${why}: ${line.slice(0, 120)}`);
    };
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE|UNIT|EOF)(?:\s+(\S+)(?:\s(.*))?)?$/.exec(line);
      if (!m) continue; // a plain comment (0.0.4)
      const [, kw, rawName = '', rest = ''] = m;
      if (kw === 'EOF') break;
      if (!METRIC_NAME.test(rawName)) fail('bad metric name');
      if (kw === 'TYPE') {
        const type = TYPES[rest.trim()];
        if (type === undefined) fail(`unknown type "${rest.trim()}"`);
        // 0.0.4 names a counter with its _total; OpenMetrics without.
        const name = type === 'counter' && rawName.endsWith('_total') ? rawName.slice(0, -6) : rawName;
        const prev = families.get(rawName);
        if (prev !== undefined && name !== rawName) families.delete(rawName); // a HELP line came first, under the 0.0.4 name
        current = family(name);
        if (prev !== undefined && prev !== current) current.help ||= prev.help;
        if (current.samples.length > 0) fail('TYPE after samples of its family');
        current.type = type!;
      } else if (kw === 'HELP') {
        current = families.get(rawName) ?? families.get(rawName.replace(/_total$/, '')) ?? family(rawName);
        current.help = unescapeHelp(rest);
      } else {
        current = family(rawName);
        current.unit = rest.trim() || undefined;
      }
      continue;
    }
    const s = parseSample(line, f, fail);
    let owner: Building | undefined;
    if (current !== undefined && belongs(s.name, current)) owner = current;
    else {
      // A family seen before (samples out of order): by the name, or the name without a type's suffix.
      for (const suffix of ALL_SUFFIXES) {
        if (!s.name.endsWith(suffix)) continue;
        const b = families.get(s.name.slice(0, s.name.length - suffix.length));
        if (b !== undefined && belongs(s.name, b)) owner = b;
      }
    }
    if (owner === undefined) owner = current = family(s.name);
    owner.samples.push(s);
  }
  return [...families.values()].filter((b) => b.samples.length > 0);
}

function belongs(sample: string, b: Building): boolean {
  if (sample === b.name) return true;
  if (!sample.startsWith(b.name)) return false;
  const rest = sample.slice(b.name.length);
  return SUFFIXES[b.type].includes(rest);
}

function unescapeHelp(s: string): string {
  return s.replace(/\\(\\|n|")/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

function parseSample(line: string, f: Format, fail: (why: string) => never): Sample {
  let i = 0;
  while (i < line.length && /[a-zA-Z0-9_:]/.test(line[i]!)) i++;
  const name = line.slice(0, i);
  if (!METRIC_NAME.test(name)) fail('bad metric name');
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const start = i;
      while (i < line.length && /[a-zA-Z0-9_]/.test(line[i]!)) i++;
      const label = line.slice(start, i);
      if (!LABEL_NAME.test(label)) fail('bad label name');
      while (line[i] === ' ') i++;
      if (line[i] !== '=' || line[i + 1] !== '"') fail('expected ="');
      i += 2;
      let v = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) fail('unterminated label value');
        i++;
        if (c === '"') break;
        if (c === '\\') {
          const e = line[i++];
          v += e === 'n' ? '\n' : e === '\\' ? '\\' : e === '"' ? '"' : fail('bad escape');
        } else v += c;
      }
      if (Object.hasOwn(labels, label)) fail(`label ${label} twice`);
      labels[label] = v;
      while (line[i] === ' ') i++;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') fail('expected , or }');
    }
  }
  // Value, optional timestamp, then (OpenMetrics) an optional exemplar after " # ".
  const hash = line.indexOf(' # ', i);
  const fields = line.slice(i, hash < 0 ? undefined : hash).trim().split(/\s+/);
  if (fields.length < 1 || fields.length > 2 || fields[0] === '') fail('expected a value and at most a timestamp');
  const value = parseValue(fields[0]!);
  if (value === undefined) fail('bad value');
  let timestamp: number | undefined;
  if (fields[1] !== undefined) {
    const t = Number(fields[1]);
    if (!Number.isFinite(t)) fail('bad timestamp');
    timestamp = f === 'openmetrics' ? t * 1000 : t;
  }
  return { name, labels, value: value!, timestamp };
}

function parseValue(s: string): number | undefined {
  switch (s) {
    case '+Inf':
    case 'Inf':
    case '+inf':
    case 'inf':
      return Infinity;
    case '-Inf':
    case '-inf':
      return -Infinity;
    case 'NaN':
    case 'nan':
      return NaN;
  }
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return undefined;
  return Number(s);
}

/** The format a content-type names (what an app answered with). */
export const formatOfContentType = (type: string | undefined): Format => (type !== undefined && /application\/openmetrics-text/i.test(type) ? 'openmetrics' : 'prometheus');

/**
 * Families with one more label on every sample (an existing label of that name moves to `exported_<name>`, as
 * Prometheus does for honor_labels: false).
 */
export function withLabel(families: readonly Family[], name: string, value: string): Family[] {
  return families.map((fam) => ({
    ...fam,
    samples: fam.samples.map((s) => {
      const labels: Record<string, string> = {};
      for (const k in s.labels) labels[k === name ? `exported_${name}` : k] = s.labels[k]!;
      labels[name] = value;
      return { ...s, labels };
    }),
  }));
}

/**
 * The sidecar's families followed by the app's: an app family of the same name and type joins the sidecar's (one
 * TYPE line per name, as the formats require); one of the same name and another type is left out and counted.
 */
export function mergeFamilies(own: readonly Family[], app: readonly Family[]): { families: Family[]; dropped: number } {
  const byName = new Map<string, number>();
  const out: Family[] = own.map((f, i) => (byName.set(f.name, i), f));
  let dropped = 0;
  for (const fam of app) {
    const at = byName.get(fam.name);
    if (at === undefined) {
      byName.set(fam.name, out.length);
      out.push(fam);
    } else if (out[at]!.type === fam.type) {
      const mine = out[at]!;
      out[at] = { ...mine, samples: [...mine.samples, ...fam.samples] };
    } else {
      dropped++;
    }
  }
  return { families: out, dropped };
}
