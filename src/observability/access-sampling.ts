// Which requests the access log keeps: errors, slow ones, a ratio. Combined, a request is kept when it passes any
// configured test: "every error and every slow request, and 1% of the rest", the tail-sampling rule operators ask
// for (all tests at once would keep only slow errors, seldom what anyone wants). The ratio is decided by a hash of
// the request id, so every hop sharing the id agrees. Configured by access_log.filter; with none set, the access log
// runs no test at all.

export interface AccessFilter {
  /** Keep responses >= 500 and requests with a response flag. */
  readonly onlyErrors?: boolean;
  /** Keep requests taking at least this many milliseconds. */
  readonly minDurationMs?: number;
  /** Keep this share of the requests (0..1), chosen by request id. */
  readonly ratio?: number;
}

/**
 * FNV-1a of the id, finished with murmur3's fmix32, mapped to [0, 1). The finish matters: ids that differ only in
 * their last characters (a client's counter, "req-41", "req-42") leave FNV's top bits alike, so without it a ratio
 * kept all of a run of such ids or none.
 */
export function idFraction(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 0x100000000;
}

/** Whether a finished request gets its line. */
export type AccessKeep = (status: number, flag: string | undefined, durationMs: number, requestId: string) => boolean;

/** A predicate for the filter, or undefined when it keeps everything (the default path stays a plain write). */
export function compileFilter(f: AccessFilter): AccessKeep | undefined {
  const errors = f.onlyErrors === true;
  const slow = f.minDurationMs;
  const ratio = f.ratio;
  if (ratio !== undefined && ratio >= 1) return undefined; // every request passes the ratio
  if (!errors && slow === undefined && ratio === undefined) return undefined;
  return (status, flag, durationMs, requestId) =>
    (errors && (status >= 500 || flag !== undefined)) || (slow !== undefined && durationMs >= slow) || (ratio !== undefined && idFraction(requestId) < ratio);
}
