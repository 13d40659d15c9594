// Retry delays: exponential backoff with full jitter, and parsing of a server's Retry-After hint.

/** Envoy's retry_back_off defaults: base_interval 25 ms, max_interval 10x base. */
export const DEFAULT_BACKOFF_BASE_MS = 25;
export const DEFAULT_BACKOFF_MAX_MS = 10 * DEFAULT_BACKOFF_BASE_MS;

/**
 * The jitter-free upper bound for retry number `attempt` (1-based): min(maxMs, baseMs * 2^(attempt-1)).
 * The exponent is clamped so a huge attempt count cannot turn 0 * Infinity into NaN.
 */
export function backoffCeiling(attempt: number, baseMs: number, maxMs: number): number {
  if (!(baseMs > 0) || !(maxMs > 0)) return 0;
  const exp = Math.min(Math.max(Math.floor(attempt), 1) - 1, 1023);
  return Math.min(maxMs, baseMs * 2 ** exp);
}

/**
 * Full jitter (AWS "Exponential Backoff and Jitter"): uniform in [0, ceiling). Spreading retries over the whole
 * interval, rather than around its end, is what breaks up synchronized retry storms after a shared failure.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = backoffCeiling(attempt, baseMs, maxMs);
  if (ceiling === 0) return 0;
  // Clamp a misbehaving source into [0, 1) so the delay never leaves [0, ceiling).
  const r = random();
  const u = r >= 0 && r < 1 ? r : r >= 1 ? 1 - Number.EPSILON : 0;
  return u * ceiling;
}

const MONTHS: Readonly<Record<string, number>> = {
  jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11,
};

// RFC 9110 section 5.6.7 HTTP-date: the preferred IMF-fixdate and the two obsolete forms recipients must accept.
const IMF_FIXDATE = /^[A-Za-z]{3}, (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const RFC850_DATE = /^[A-Za-z]{6,9}, (\d{2})-([A-Za-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const ASCTIME_DATE = /^[A-Za-z]{3} ([A-Za-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;

/**
 * Parses an HTTP-date to epoch ms, or undefined. Written out rather than using Date.parse because Date.parse
 * reads the zone-less asctime form in the host's local time zone, which would make the result machine-dependent.
 */
export function parseHttpDate(value: string, nowMs: number): number | undefined {
  let m = IMF_FIXDATE.exec(value);
  if (m) return utc(m[3], m[2], m[1], m[4], m[5], m[6]);
  m = RFC850_DATE.exec(value);
  if (m) {
    // Two-digit year: RFC 9110 says a year more than 50 years in the future means the most recent past such year.
    const yy = Number(m[3]);
    const nowYear = new Date(nowMs).getUTCFullYear();
    let year = Math.floor(nowYear / 100) * 100 + yy;
    if (year > nowYear + 50) year -= 100;
    return utc(String(year), m[2], m[1], m[4], m[5], m[6]);
  }
  m = ASCTIME_DATE.exec(value);
  if (m) return utc(m[6], m[1], m[2]?.trim(), m[3], m[4], m[5]);
  return undefined;
}

function utc(
  year: string | undefined,
  mon: string | undefined,
  day: string | undefined,
  hh: string | undefined,
  mm: string | undefined,
  ss: string | undefined,
): number | undefined {
  const month = MONTHS[(mon ?? '').toLowerCase()];
  const y = Number(year);
  const d = Number(day);
  const h = Number(hh);
  const mi = Number(mm);
  // 60 allows a leap second; Date.UTC folds it into the next minute, which is close enough for a delay.
  const s = Number(ss);
  if (month === undefined || !(d >= 1 && d <= 31 && h <= 23 && mi <= 59 && s <= 60)) return undefined;
  const ms = Date.UTC(y, month, d, h, mi, s);
  // Reject dates Date.UTC silently rolls over (Feb 30 -> Mar 2).
  if (new Date(ms).getUTCDate() !== d && s !== 60) return undefined;
  return ms;
}

/**
 * Retry-After (RFC 9110 section 10.2.3) as a delay in ms from nowMs (epoch ms), or undefined when absent or
 * malformed. Accepts delta-seconds and HTTP-date; a date in the past, or a negative delta (not valid
 * syntax, but seen in the wild), clamps to 0, meaning "retry now".
 */
export function parseRetryAfter(value: string, nowMs: number): number | undefined {
  const v = value.trim();
  if (v === '') return undefined;
  if (/^-?\d+$/.test(v)) {
    const seconds = Number(v);
    return Number.isFinite(seconds) ? Math.max(0, seconds * 1000) : undefined;
  }
  const at = parseHttpDate(v, nowMs);
  return at === undefined ? undefined : Math.max(0, at - nowMs);
}
