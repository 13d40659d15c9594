// An append-only line sink that never blocks the caller: lines gather in memory and go out in one async write per
// event-loop turn. If the destination cannot keep up, lines beyond a cap are dropped and counted, not queued forever.
import fs from 'node:fs';

const MAX_BUFFERED = 16 * 1024 * 1024;
/** Write when this much is gathered, or after FLUSH_MS, whichever comes first: few syscalls, a live `tail -f`. */
const BATCH_BYTES = 64 * 1024;
const FLUSH_MS = 100;

export class LineWriter {
  readonly #fd: number;
  readonly #ownsFd: boolean;
  #buf = '';
  #writing = false;
  #scheduled = false;
  #closed = false;
  dropped = 0;

  constructor(target: 'stdout' | 'stderr' | string) {
    if (target === 'stdout') this.#fd = 1;
    else if (target === 'stderr') this.#fd = 2;
    else {
      this.#fd = fs.openSync(target, 'a');
      this.#ownsFd = true;
      return;
    }
    this.#ownsFd = false;
  }

  write(line: string): void {
    if (this.#buf.length > MAX_BUFFERED || this.#closed) {
      this.dropped++;
      return;
    }
    this.#buf += line;
    if (this.#writing) return;
    if (this.#buf.length >= BATCH_BYTES) this.#flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setTimeout(this.#flush, FLUSH_MS).unref();
    }
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    if (this.#writing || this.#buf.length === 0) return;
    const data = Buffer.from(this.#buf);
    this.#buf = '';
    this.#writing = true;
    this.#writeAll(data, 0);
  };

  #writeAll(data: Buffer, offset: number): void {
    fs.write(this.#fd, data, offset, data.length - offset, null, (err, written) => {
      if (err) {
        // A non-blocking pipe that is full: try again shortly. Any other error: the lines are lost, not the request.
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          setTimeout(() => this.#writeAll(data, offset), 5);
          return;
        }
        this.#writing = false;
        return;
      }
      if (offset + written < data.length) {
        this.#writeAll(data, offset + written);
        return;
      }
      this.#writing = false;
      // Batch again rather than chase each new line with its own write.
      if (this.#buf.length >= BATCH_BYTES) this.#flush();
      else if (this.#buf.length && !this.#scheduled) {
        this.#scheduled = true;
        setTimeout(this.#flush, FLUSH_MS).unref();
      }
    });
  }

  /** Writes what is left synchronously (at shutdown) and stops accepting lines. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const rest = this.#buf;
    this.#buf = '';
    try {
      if (rest) fs.writeSync(this.#fd, rest);
      if (this.#ownsFd) fs.closeSync(this.#fd);
    } catch {
      // the destination is gone; nothing more to do at exit
    }
  }
}
