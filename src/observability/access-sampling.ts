// Which requests the access log keeps: only errors, only slow ones, a ratio; combined, a request is kept when it
// passes every configured test. The ratio is decided by a hash of the request id, so every hop sharing the id agrees.
// Configured by access_log.filter; with none set, the access log runs no test at all.

export interface AccessFilter {
  /** Keep only responses >= 500 or with a response flag. */
  readonly onlyErrors?: boolean;
  /** Keep only requests taking at least this many milliseconds. */
  readonly minDurationMs?: number;
  /** Keep this share of requests (0..1), chosen by request id. */
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
  if (!errors && slow === undefined && (ratio === undefined || ratio >= 1)) return undefined;
  return (status, flag, durationMs, requestId) =>
    (!errors || status >= 500 || flag !== undefined) &&
    (slow === undefined || durationMs >= slow) &&
    (ratio === undefined || ratio >= 1 || idFraction(requestId) < ratio);
}
