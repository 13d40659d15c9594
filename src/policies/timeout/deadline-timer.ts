// One timer for many deadlines. Arming a Node timer per request costs a Timeout object, a list insert and a clear;
// here a deadline is a Set entry and a single timer is armed for the earliest one. Deadlines that end early (the
// common case: the response came in time) are just deleted; the timer, when it fires, scans what is still pending
// and re-arms for the next. With one route timeout that happens about once per timeout period.
import type { Clock } from '../../core/clock.js';

export interface Deadline {
  /** Clock time at which `expire` runs unless the deadline is cleared first. */
  readonly at: number;
  readonly expire: () => void;
}

export class DeadlineTimer {
  readonly #clock: Clock;
  readonly #pending = new Set<Deadline>();
  #armedAt = Infinity;
  #cancelTimer: (() => void) | undefined;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get size(): number {
    return this.#pending.size;
  }

  /** Runs `expire` at clock time `at` unless cleared; returns the handle for clear(). */
  add(at: number, expire: () => void): Deadline {
    const d: Deadline = { at, expire };
    this.#pending.add(d);
    if (at < this.#armedAt) this.#arm(at);
    return d;
  }

  clear(d: Deadline): void {
    this.#pending.delete(d);
  }

  #arm(at: number): void {
    this.#cancelTimer?.();
    this.#armedAt = at;
    // Whole milliseconds, at least one: the clock may read a hair before `at` when the timer fires.
    this.#cancelTimer = this.#clock.setTimeout(this.#fire, Math.max(1, Math.ceil(at - this.#clock.now())));
  }

  readonly #fire = (): void => {
    this.#cancelTimer = undefined;
    this.#armedAt = Infinity;
    const now = this.#clock.now();
    let next = Infinity;
    const due: Deadline[] = [];
    for (const d of this.#pending) {
      if (d.at <= now) due.push(d);
      else if (d.at < next) next = d.at;
    }
    for (const d of due) this.#pending.delete(d);
    if (next !== Infinity) this.#arm(next);
    // Expire after the bookkeeping: an expire callback may add or clear deadlines.
    for (const d of due) d.expire();
  };
}
