// Request body replay for retries: tees the body into a bounded buffer while the first attempt streams it, so a
// retry can send it again. Over the limit the buffer is dropped and the request becomes non-replayable (sent once).
import { Readable } from 'node:stream';

/**
 * Reads the source once and feeds it to one attempt's stream at a time. A new attempt's stream replays the bytes
 * buffered so far, then continues with whatever the source has not delivered yet, so a retry after an early failure
 * (nothing or only part of the body sent) still gets the whole body.
 */
export class ReplayableBody {
  readonly limit: number;
  readonly #source: Readable;
  #chunks: Buffer[] = [];
  #size = 0;
  #overflow = false;
  #ended = false;
  #error: Error | undefined;
  #current: AttemptBody | undefined;

  constructor(source: Readable, limit: number) {
    this.#source = source;
    this.limit = limit;
    source.on('data', (chunk: Buffer) => this.#onData(chunk));
    source.once('end', () => {
      this.#ended = true;
      this.#current?.push(null);
    });
    source.on('error', (err: Error) => {
      this.#error = err;
      this.#current?.destroy(err);
    });
    source.pause();
  }

  /** False once the body outgrew the limit: a later attempt could not send it whole. */
  get replayable(): boolean {
    return !this.#overflow;
  }

  /** Bytes held for replay. */
  get buffered(): number {
    return this.#size;
  }

  /** No further replay will be asked for (the response is final): stop buffering and free what is held. */
  release(): void {
    this.#overflow = true;
    this.#chunks = [];
    this.#size = 0;
  }

  /** A stream of the whole body for the next attempt, or undefined when the body is not replayable. */
  next(): Readable | undefined {
    if (this.#overflow && this.#current !== undefined) return undefined;
    const prev = this.#current;
    const body = new AttemptBody(() => this.#source.resume());
    this.#current = body;
    // Detach the previous attempt's stream: it no longer receives bytes, and its end does not concern us.
    if (prev && !prev.destroyed) prev.destroy();
    for (const c of this.#chunks) body.push(c);
    if (this.#error) body.destroy(this.#error);
    else if (this.#ended) body.push(null);
    return body;
  }

  #onData(chunk: Buffer): void {
    if (!this.#overflow) {
      this.#size += chunk.length;
      if (this.#size > this.limit) {
        this.#overflow = true;
        this.#chunks = [];
        this.#size = 0;
      } else {
        this.#chunks.push(chunk);
      }
    }
    const cur = this.#current;
    if (!cur || cur.destroyed) {
      this.#source.pause();
      return;
    }
    if (!cur.push(chunk)) this.#source.pause();
  }
}

/** One attempt's view of the body; reading it asks the shared source for more. */
class AttemptBody extends Readable {
  readonly #more: () => void;
  constructor(more: () => void) {
    super({ highWaterMark: 64 * 1024 });
    this.#more = more;
    // The source can fail (the client drops) when no one reads this attempt any more (its upstream already
    // answered): that failure must not become an uncaught exception. Readers add their own listener.
    this.on('error', ignore);
  }
  override _read(): void {
    this.#more();
  }
}

const ignore = (): void => {};
