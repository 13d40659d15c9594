// A Readable fed by a push-based source (the HTTP/1.1 upstream's parser callbacks) with pause/resume for backpressure.
import { Readable } from 'node:stream';

export class PushedBody extends Readable {
  /** Set by the producer; called when the consumer wants more after a push returned false. */
  onDemand: (() => void) | undefined;
  /** True once the producer has delivered the whole body (it may still sit in the buffer). */
  complete = false;

  constructor() {
    super({ highWaterMark: 64 * 1024 });
  }

  override _read(): void {
    const r = this.onDemand;
    if (r) r();
  }

  /** Marks the end of the body. */
  finish(): void {
    this.complete = true;
    this.push(null);
  }

  /**
   * When the whole body is already buffered (small responses arrive with their head), takes it in one piece so the
   * writer can send head and body in one write without switching the stream to flowing mode. Returns undefined when
   * the body is still arriving.
   */
  takeWhole(): Buffer | undefined {
    if (!this.complete || this.destroyed) return undefined;
    const data = this.read() as Buffer | null;
    return data ?? EMPTY;
  }
}

const EMPTY = Buffer.alloc(0);
