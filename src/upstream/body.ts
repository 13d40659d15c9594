// A Readable fed by a push-based source (undici's handler callbacks) with pause/resume for backpressure.
import { Readable } from 'node:stream';

export class PushedBody extends Readable {
  /** Set by the producer; called when the consumer wants more after a push returned false. */
  onDemand: (() => void) | undefined;

  constructor() {
    super({ highWaterMark: 64 * 1024 });
  }

  override _read(): void {
    const r = this.onDemand;
    if (r) r();
  }
}
