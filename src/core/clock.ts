// Time as a dependency, so policy logic can be tested with a fake clock.
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Schedules fn; returns a cancel function. */
  setTimeout(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};
