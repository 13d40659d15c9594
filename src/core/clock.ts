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
    // Node keeps one timer list per distinct duration. Whole milliseconds (rounded up: never early) let requests with
    // the same route timeout share a list, where a fractional remainder made a new list and a heap insert per request.
    const t = setTimeout(fn, Math.ceil(ms));
    return () => clearTimeout(t);
  },
};
