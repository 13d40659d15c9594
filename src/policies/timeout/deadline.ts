// End-to-end deadlines: parsing the caller's deadline (grpc-timeout, x-sidecar-timeout) and forwarding what is left.
// Pure apart from forwardDeadline, which edits the headers of the attempt about to be sent.
import type { HeaderList } from '../../core/headers.js';

/** Request header carrying a deadline in milliseconds; set on every forwarded request that has a deadline. */
export const TIMEOUT_HEADER = 'x-sidecar-timeout';
export const GRPC_TIMEOUT_HEADER = 'grpc-timeout';

const GRPC_UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/**
 * gRPC's Timeout header: 1 to 8 ASCII digits and a unit (H, M, S, m, u, n). Returns milliseconds (possibly
 * fractional) or undefined when the value is malformed.
 */
export function parseGrpcTimeout(value: string): number | undefined {
  const n = value.length;
  if (n < 2 || n > 9) return undefined;
  const unit = GRPC_UNIT_MS[value[n - 1]!];
  if (unit === undefined) return undefined;
  let v = 0;
  for (let i = 0; i < n - 1; i++) {
    const c = value.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return undefined;
    v = v * 10 + c;
  }
  return v * unit;
}

/** Formats milliseconds as a grpc-timeout value (at most 8 digits), rounding down, never below 0m. */
export function formatGrpcTimeout(ms: number): string {
  if (!(ms > 0)) return '0m';
  const m = Math.floor(ms);
  if (m < 1) {
    const u = Math.floor(ms * 1000);
    return u > 0 ? `${u}u` : `${Math.floor(ms * 1e6)}n`;
  }
  if (m <= 99_999_999) return `${m}m`;
  const s = Math.floor(ms / 1000);
  if (s <= 99_999_999) return `${s}S`;
  return `${Math.min(99_999_999, Math.floor(ms / 3_600_000))}H`;
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** x-sidecar-timeout: plain milliseconds ("250") or a duration ("250ms", "2s", "1.5s", "1m"). undefined when malformed. */
export function parseTimeoutHeader(value: string): number | undefined {
  const m = DURATION.exec(value.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * UNIT_MS[m[2] ?? 'ms']!;
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * Just before an attempt is written: tells the upstream how much of the deadline is left, as x-sidecar-timeout
 * (whole milliseconds) on every request and, for gRPC requests, as grpc-timeout. Costs one header write per request.
 */
export function forwardDeadline(headers: HeaderList, deadline: number, now: number): void {
  if (deadline === Infinity) return;
  const left = Math.max(0, deadline - now);
  headers.set(TIMEOUT_HEADER, String(Math.floor(left)));
  const ct = headers.get('content-type');
  if (ct !== undefined && ct.startsWith('application/grpc')) headers.set(GRPC_TIMEOUT_HEADER, formatGrpcTimeout(left));
}
