// Idle watchdogs for the two ways a slow client holds on to a request: body bytes that stop arriving
// (request_body_timeout) and response bytes it stops reading (response_write_timeout). Each is one timer per watched
// request, re-checked against a timestamp when it fires rather than re-armed for every chunk.
import type { Readable, Writable } from 'node:stream';

const now = (): number => performance.now();

/**
 * Fires `onIdle` when no request body bytes arrived for `ms` while the sidecar was reading the body. Time the body is
 * not being read (queued for a pooled connection, the upstream pushing back, a 100-continue not yet sent) does not
 * count: the client is not the one stalling then. Nor does time the response is streaming (`responseBytes` growing):
 * a bidirectional stream whose client is quiet while the server talks is not idle (Envoy's stream idle timeout).
 */
export class BodyIdleWatch {
  /** When body bytes last arrived (performance.now()); the adapter's byte counter writes it. */
  last: number;
  readonly #source: Readable;
  readonly #ms: number;
  readonly #onIdle: () => void;
  readonly #responseBytes: () => number;
  /** Response bytes written when last looked. */
  #written = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(source: Readable, ms: number, onIdle: () => void, responseBytes: () => number) {
    this.#source = source;
    this.#ms = ms;
    this.#onIdle = onIdle;
    this.#responseBytes = responseBytes;
    this.last = now();
    // Reading starts (or starts again after a push-back): the client's clock starts then, not at the last check.
    source.on('resume', this.#reading);
    this.#timer = setTimeout(this.#check, ms);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#source.off('resume', this.#reading);
  }

  readonly #reading = (): void => {
    this.last = now();
  };

  readonly #check = (): void => {
    this.#timer = undefined;
    const source = this.#source;
    if (source.readableEnded || source.destroyed) return this.stop();
    const t = now();
    const written = this.#responseBytes();
    if (source.readableFlowing !== true || written !== this.#written) this.last = t;
    this.#written = written;
    const idle = t - this.last;
    if (idle >= this.#ms) this.#onIdle();
    else this.#timer = setTimeout(this.#check, this.#ms - idle);
  };
}

/**
 * Fires `onStall` when the downstream took none of the bytes queued for it for `ms` (nginx's send_timeout: a reader
 * that takes a little now and then is slow, not stalled). Armed by the first write that is pushed back; a drain
 * disarms it lazily: the timer, when it fires, finds nothing stalled and goes away until the next push-back.
 */
export class WriteStallWatch {
  readonly #out: Writable;
  readonly #ms: number;
  readonly #onStall: () => void;
  /** When the current stall began; -1 while writes flow. */
  #since = -1;
  /** Bytes queued for the downstream when last looked. */
  #pending = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(out: Writable, ms: number, onStall: () => void) {
    this.#out = out;
    this.#ms = ms;
    this.#onStall = onStall;
    out.once('close', this.stop);
  }

  /** A write was pushed back (or an end left bytes queued): start the clock, unless it is already running. */
  stalled(): void {
    if (this.#since < 0) {
      this.#since = now();
      this.#pending = this.#out.writableLength;
    }
    if (this.#timer === undefined && !this.#stopped) this.#timer = setTimeout(this.#check, this.#ms);
  }

  /** The downstream took everything queued. */
  drained(): void {
    this.#since = -1;
  }

  readonly stop = (): void => {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  };

  readonly #check = (): void => {
    this.#timer = undefined;
    const out = this.#out;
    if (this.#stopped || this.#since < 0 || out.destroyed || out.writableFinished) return;
    const t = now();
    const pending = out.writableLength;
    if (pending === 0) {
      // Everything was taken (a drain the pump has not seen yet): no stall until the next push-back.
      this.#since = -1;
      return;
    }
    if (pending < this.#pending) this.#since = t;
    this.#pending = pending;
    const left = this.#since + this.#ms - t;
    if (left <= 0) this.#onStall();
    else this.#timer = setTimeout(this.#check, left);
  };
}

/**
 * After a whole body was handed to `out` in one end(): whether its bytes did not all leave at once (HTTP/2 flow
 * control, a full socket) and need watching. The usual small response does not, and arms no timer.
 */
export const leftQueued = (out: Writable): boolean => !out.writableFinished && out.writableLength >= out.writableHighWaterMark;

/** Watches what an end() left queued (see leftQueued). */
export function watchEnd(out: Writable, ms: number, onStall: () => void): void {
  new WriteStallWatch(out, ms, onStall).stalled();
}
