// What every access-log format shares: JSON string literals without a RegExp, cached quoting of few-valued fields,
// the shared time string, query-credential masking and header lookups.
import type { HeaderList } from '../core/headers.js';
import { decodeQueryComponent } from '../core/query.js';
import { REDACTED } from './sensitive-headers.js';

// toISOString costs more than the rest of the line. Requests finishing in the same millisecond share the string, and
// under load nearly every millisecond is a new one: so only the second ("2026-12-03T10:17:09.") comes from a Date,
// once a second, and the milliseconds are appended to it.
let lastMs = NaN;
let lastIso = '';
let lastSecond = NaN;
let secondPrefix = '';
export function isoNow(): string {
  return isoOf(Date.now());
}

/** `new Date(ms).toISOString()`, from the cached second when `ms` falls in the same one as the last call. */
export function isoOf(ms: number): string {
  if (ms !== lastMs) {
    lastMs = ms;
    const frac = ((ms % 1000) + 1000) % 1000;
    const second = ms - frac;
    if (second !== lastSecond) {
      lastSecond = second;
      const iso = new Date(second).toISOString();
      secondPrefix = iso.slice(0, iso.length - 4); // without "000Z"
    }
    lastIso = `${secondPrefix}${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}Z`;
  }
  return lastIso;
}

/**
 * A JSON string literal for `v` (null when absent). A character scan decides whether escaping is needed: measured in
 * the running proxy, a RegExp test per field cost more than the rest of the line together.
 */
export function jsonString(v: string | undefined): string {
  if (v === undefined) return 'null';
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return escapeBreaks(JSON.stringify(v));
  }
  return `"${v}"`;
}

/** JSON.stringify leaves C1 controls and U+2028/9 as they are; some line readers break lines on U+0085 and U+2028/9. */
const BREAK = /[\u007f-\u009f\u2028\u2029]/;
const BREAKS = new RegExp(BREAK.source, 'g');
const escapeBreaks = (json: string): string => (BREAK.test(json) ? json.replace(BREAKS, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`) : json);

/**
 * Fields with few distinct values (listener, route, cluster, endpoint, peer address, flag) are quoted once and then
 * looked up: no scan and no new string per line. Bounded, so a stream of distinct values cannot grow it without end.
 */
const quotedCache = new Map<string, string>();
const QUOTED_CACHE_MAX = 4096;
export function quoted(v: string | undefined): string {
  if (v === undefined || v === '') return 'null';
  let q = quotedCache.get(v);
  if (q === undefined) {
    q = jsonString(v);
    if (quotedCache.size < QUOTED_CACHE_MAX) quotedCache.set(v, q);
  }
  return q;
}

/** Milliseconds with three decimals, from integer microseconds (cheaper than a fractional number's shortest form). */
export function millis(ms: number): string {
  const us = Math.round(ms * 1000);
  if (!(us >= 0)) return '0'; // never NaN or negative in a JSON line
  const frac = us % 1000;
  return `${(us - frac) / 1000}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}`;
}

/** The path with the values of the named query parameters replaced by `[redacted]` (credentials never reach the log). */
export function redactQuery(path: string, names: readonly string[]): string {
  const q = path.indexOf('?');
  if (q < 0) return path;
  const parts = path.slice(q + 1).split('&').map((kv) => {
    const i = kv.indexOf('=');
    const k = i < 0 ? kv : kv.slice(0, i);
    return names.includes(decodeQueryComponent(k)) ? `${k}=${REDACTED}` : kv;
  });
  return `${path.slice(0, q)}?${parts.join('&')}`;
}

/** A header's value as logged: its values joined with ", " (RFC 9110 5.3), undefined when absent. `name` is lower-case. */
export function headerValue(headers: HeaderList | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined;
  const raw = headers.raw;
  let out: string | undefined;
  for (let i = 0; i < raw.length; i += 2) if (raw[i] === name) out = out === undefined ? raw[i + 1]! : `${out}, ${raw[i + 1]!}`;
  return out;
}

/**
 * A logged header's value: `[redacted]` for a sensitive header that is present (its presence shows, its value
 * never), undefined when absent.
 */
export function loggedHeader(headers: HeaderList | undefined, name: string, sensitive: boolean): string | undefined {
  const v = headerValue(headers, name);
  return v === undefined || !sensitive ? v : REDACTED;
}
