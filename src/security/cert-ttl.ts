// Certificate lifetimes: parsing "24h" / "90d" and checking a workload TTL against the CA's remaining validity. Pure.
import { formatDuration, parseDuration } from '../config/units.js';

const DAY_MS = 86_400_000;
/** Clock-skew allowance: notBefore is set this far in the past so a peer whose clock is a little behind accepts it. */
export const BACKDATE_MS = 5 * 60_000;

/** Milliseconds for a TTL: the config units (ms, s, m, h) plus days ("365d"); undefined when not one or not positive. */
export function parseTtl(text: string): number | undefined {
  const days = /^(\d+(?:\.\d+)?)d$/.exec(text.trim());
  const ms = days ? Math.round(Number(days[1]) * DAY_MS) : parseDuration(text);
  return ms !== undefined && ms > 0 ? ms : undefined;
}

/** A TTL as a person would say it: "365d", "24h", "90m". */
export function formatTtl(ms: number): string {
  // 24h reads better as hours; 2 days and more as days.
  return ms >= 2 * DAY_MS && ms % DAY_MS === 0 ? `${ms / DAY_MS}d` : formatDuration(ms);
}

/** Why a workload certificate of this TTL cannot be issued by a CA valid until `caNotAfter`, or undefined. */
export function ttlProblem(ttlMs: number, now: number, caNotBefore: number, caNotAfter: number): string | undefined {
  if (now < caNotBefore) return `the CA certificate is not valid yet (valid from ${new Date(caNotBefore).toISOString()})`;
  if (now >= caNotAfter) return `the CA certificate expired at ${new Date(caNotAfter).toISOString()}; make a new CA with "sidecar certs init-ca"`;
  const remaining = caNotAfter - now;
  if (ttlMs > remaining) {
    return `--ttl ${formatTtl(ttlMs)} is longer than the CA's remaining validity (${span(remaining)}, until ${new Date(caNotAfter).toISOString()}); a certificate may not outlive its CA`;
  }
  return undefined;
}

/** "expires in 23h 59m" / "expired 2d 3h ago" / "not valid for another 5m": plain words for a validity window. */
export function describeValidity(now: number, notBefore: number, notAfter: number): { valid: boolean; words: string } {
  if (now < notBefore) return { valid: false, words: `not valid yet: valid in ${span(notBefore - now)}` };
  if (now >= notAfter) return { valid: false, words: `expired ${span(now - notAfter)} ago` };
  return { valid: true, words: `valid now, expires in ${span(notAfter - now)}` };
}

/** A span in its two largest units: "364d 23h", "5m 2s". */
export function span(ms: number): string {
  const units: Array<[string, number]> = [['d', DAY_MS], ['h', 3_600_000], ['m', 60_000], ['s', 1000]];
  const parts: string[] = [];
  let left = ms;
  for (const [name, size] of units) {
    const n = Math.floor(left / size);
    if (n > 0 && parts.length < 2) {
      parts.push(`${n}${name}`);
      left -= n * size;
    } else if (parts.length) break;
  }
  return parts.length ? parts.join(' ') : `${Math.max(0, Math.round(ms))}ms`;
}
