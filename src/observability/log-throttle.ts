// Bounds how often one kind of event reaches the operational log: a flood (one per frame or stream) becomes one line per interval.
import type { Clock } from '../core/clock.js';

export class LogThrottle {
  readonly #clock: Clock;
  readonly #intervalMs: number;
  #last = -Infinity;
  #suppressed = 0;

  constructor(clock: Clock, intervalMs: number) {
    this.#clock = clock;
    this.#intervalMs = intervalMs;
  }

  /**
   * Call once per event. Returns how many events were held back since the last line when this one may be logged
   * now, or undefined when it is to be held back (counted for the next line).
   */
  take(): number | undefined {
    const now = this.#clock.now();
    if (now - this.#last < this.#intervalMs) {
      this.#suppressed++;
      return undefined;
    }
    this.#last = now;
    const held = this.#suppressed;
    this.#suppressed = 0;
    return held;
  }
}
