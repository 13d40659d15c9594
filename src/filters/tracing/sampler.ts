// Sampling decisions, pure: the head decision (parent-based, then trace-id ratio) when a request arrives, and the
// tail keep decision for an unsampled request's own spans when it ends.
import type { ParentContext } from './propagation.js';

/**
 * Trace-id ratio: the low 52 bits of the trace id (random in W3C ids) against ratio * 2^52, so every sidecar on a
 * trace without a sampled flag decides alike and a ratio keeps that share of traces.
 */
export function ratioSampled(traceId: string, ratio: number): boolean {
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  return low52(traceId) < ratio * 2 ** 52;
}

/** The last 13 hex digits as a number (exact: 52 bits fit a double); a loop, not parseInt(slice()), on the hot path. */
function low52(id: string): number {
  let n = 0;
  for (let i = id.length - 13; i < id.length; i++) {
    const c = id.charCodeAt(i);
    n = n * 16 + (c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57);
  }
  return n;
}

/** Parent-based: a parent's sampled flag decides; a root (or a parent that left it open) goes by the ratio. */
export function headSampled(parent: ParentContext | undefined, traceId: string, ratio: number): boolean {
  const s = parent?.sampled;
  return s !== undefined ? s : ratioSampled(traceId, ratio);
}

export interface TailRule {
  /** Keep failed requests (5xx, whoever answered it). */
  readonly errors: boolean;
  /** Keep requests slower than this many ms; 0: off. */
  readonly slowerThan: number;
}

/** Whether an unsampled request's buffered spans are kept after all. */
export const tailKeep = (rule: TailRule, status: number, durationMs: number): boolean =>
  (rule.errors && status >= 500) || (rule.slowerThan > 0 && durationMs > rule.slowerThan);

/** Whether an unsampled request needs its spans recorded at all (only when a tail rule could keep them). */
export const tailActive = (rule: TailRule): boolean => rule.errors || rule.slowerThan > 0;
