// Trace context on the wire, pure: W3C traceparent (Trace Context level 1) and B3 (single `b3` and multi X-B3-*)
// read inbound, traceparent and optionally B3 written upstream. Anything malformed reads as "no parent": the
// request then starts a new trace, as the W3C rules say.

/** A parent read off an inbound request. Ids are lower-case hex: 32 digits (trace) and 16 (span). */
export interface ParentContext {
  readonly traceId: string;
  readonly spanId: string;
  /** undefined: the caller left the decision to us (B3 without a sampling state). */
  readonly sampled: boolean | undefined;
  readonly format: 'w3c' | 'b3' | 'b3multi';
}

const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';

/** Lower-case hex digits from `from` to `to`; not a regex: every mesh hop reads a traceparent. */
function hexRun(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

const validTrace = (id: string): boolean => id.length === 32 && hexRun(id, 0, 32) && id !== ZERO_TRACE;
const validSpan = (id: string): boolean => id.length === 16 && hexRun(id, 0, 16) && id !== ZERO_SPAN;

/**
 * `version-traceid-parentid-flags`. Version 00 has exactly four fields; a later version may add fields after the
 * flags (we read the four we know); version ff is invalid; upper-case hex is invalid.
 */
export function parseTraceparent(v: string | undefined): ParentContext | undefined {
  if (v === undefined) return undefined;
  const s = v.length === 55 ? v : v.trim();
  if (s.length < 55) return undefined;
  if (!hexRun(s, 0, 2) || (s.charCodeAt(0) === 0x66 && s.charCodeAt(1) === 0x66)) return undefined; // ff
  const v00 = s.charCodeAt(0) === 0x30 && s.charCodeAt(1) === 0x30;
  if (v00 ? s.length !== 55 : s.length > 55 && s[55] !== '-') return undefined;
  if (s[2] !== '-' || s[35] !== '-' || s[52] !== '-') return undefined;
  if (!hexRun(s, 3, 35) || !hexRun(s, 36, 52) || !hexRun(s, 53, 55)) return undefined;
  const traceId = s.slice(3, 35);
  const spanId = s.slice(36, 52);
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  const low = s.charCodeAt(54); // the flags' low digit holds the sampled bit
  return { traceId, spanId, sampled: ((low <= 0x39 ? low - 0x30 : low - 0x57) & 1) === 1, format: 'w3c' };
}

export const formatTraceparent = (traceId: string, spanId: string, sampled: boolean): string => `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;

// W3C tracestate (Trace Context level 1, 3.3): `key=value` list members separated by commas, at most 32.
const TS_KEY = /^(?:[a-z0-9][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})$/;
const TS_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;
const TS_MAX_MEMBERS = 32;
/** What we propagate at most (W3C: at least 512 characters); past it, members over 128 characters go first, then the last ones. */
const TS_MAX_LENGTH = 512;
const TS_LONG_MEMBER = 128;

/**
 * The tracestate to pass on, from every tracestate header of the request (several headers are one list, W3C 3.3.1):
 * undefined when there is none or it is invalid (a malformed member, a repeated key, more than 32 members), which
 * W3C lets a vendor discard whole. A valid one longer than 512 characters is cut down as W3C says.
 */
export function parseTracestate(values: readonly string[]): string | undefined {
  if (values.length === 0) return undefined;
  const members: string[] = [];
  const keys = new Set<string>();
  for (const v of values) {
    for (const raw of v.split(',')) {
      const m = raw.trim();
      if (m === '') continue; // empty members are allowed and dropped
      const eq = m.indexOf('=');
      if (eq <= 0) return undefined;
      const key = m.slice(0, eq);
      if (!TS_KEY.test(key) || !TS_VALUE.test(m.slice(eq + 1)) || keys.has(key)) return undefined;
      keys.add(key);
      members.push(m);
      if (members.length > TS_MAX_MEMBERS) return undefined;
    }
  }
  if (members.length === 0) return undefined;
  let kept = members;
  const size = (ms: readonly string[]): number => (ms.length === 0 ? 0 : ms.reduce((n, m) => n + m.length, 0) + ms.length - 1);
  while (size(kept) > TS_MAX_LENGTH) {
    const long = kept.findLastIndex((m) => m.length > TS_LONG_MEMBER);
    kept = long >= 0 ? kept.filter((_, i) => i !== long) : kept.slice(0, -1);
  }
  return kept.length === 0 ? undefined : kept.join(',');
}

/** A 64-bit B3 trace id is the low half of a 128-bit one (left-padded with zeros). */
const b3Trace = (id: string): string | undefined => {
  const t = id.toLowerCase();
  const full = t.length === 16 ? ZERO_SPAN + t : t;
  return validTrace(full) ? full : undefined;
};

const b3Sampled = (s: string | undefined): boolean | undefined | null => {
  if (s === undefined) return undefined;
  if (s === '1' || s === 'd' || s === 'true') return true;
  if (s === '0' || s === 'false') return false;
  return null; // malformed
};

/** `b3: {traceid}-{spanid}[-{sampled}[-{parentspanid}]]`; a lone `0`/`1`/`d` carries a decision but no parent. */
export function parseB3Single(v: string | undefined): ParentContext | undefined {
  if (v === undefined) return undefined;
  const parts = v.trim().split('-');
  if (parts.length < 2 || parts.length > 4) return undefined;
  const traceId = b3Trace(parts[0]!);
  const spanId = parts[1]!.toLowerCase();
  const sampled = b3Sampled(parts[2]);
  if (traceId === undefined || !validSpan(spanId) || sampled === null) return undefined;
  if (parts[3] !== undefined && !validSpan(parts[3].toLowerCase())) return undefined;
  return { traceId, spanId, sampled, format: 'b3' };
}

/** X-B3-TraceId, X-B3-SpanId, X-B3-Sampled (1/0, true/false) and X-B3-Flags (1: debug, which means sampled). */
export function parseB3Multi(get: (name: string) => string | undefined): ParentContext | undefined {
  const t = get('x-b3-traceid');
  const s = get('x-b3-spanid');
  if (t === undefined || s === undefined) return undefined;
  const traceId = b3Trace(t.trim());
  const spanId = s.trim().toLowerCase();
  const sampled = get('x-b3-flags')?.trim() === '1' ? true : b3Sampled(get('x-b3-sampled')?.trim().toLowerCase());
  if (traceId === undefined || !validSpan(spanId) || sampled === null) return undefined;
  return { traceId, spanId, sampled, format: 'b3multi' };
}

/**
 * A sampling decision sent without a parent (B3 lets a caller say only "sample" or "don't"): `b3: 0`, `b3: 1`, `b3: d`,
 * or X-B3-Sampled / X-B3-Flags without ids. undefined: no decision (or a malformed one).
 */
export function readB3Decision(get: (name: string) => string | undefined): boolean | undefined {
  const single = get('b3')?.trim();
  if (single !== undefined) {
    if (single === '0') return false;
    if (single === '1' || single === 'd') return true;
    return undefined;
  }
  if (get('x-b3-flags')?.trim() === '1') return true;
  return b3Sampled(get('x-b3-sampled')?.trim().toLowerCase()) ?? undefined;
}

/** The request's parent: a valid traceparent first, then b3, then the X-B3-* headers. */
export function readParent(get: (name: string) => string | undefined): ParentContext | undefined {
  return parseTraceparent(get('traceparent')) ?? parseB3Single(get('b3')) ?? parseB3Multi(get);
}

export const formatB3Single = (traceId: string, spanId: string, sampled: boolean): string => `${traceId}-${spanId}-${sampled ? '1' : '0'}`;

