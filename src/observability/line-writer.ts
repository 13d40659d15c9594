// An append-only line sink that never blocks the caller. Each line is encoded straight into a preallocated chunk
// (no growing string to flatten and copy later); full chunks go out in one async write each, and a timer sends a
// partial chunk so `tail -f` stays live. If the destination cannot keep up, lines beyond a cap are dropped and
// counted, not queued forever.
import fs from 'node:fs';

const MAX_BUFFERED = 16 * 1024 * 1024;
/**
 * Write when a chunk of this size is full, or after FLUSH_MS, whichever comes first: few syscalls, a live log. Each
 * fs.write costs about 50-90 µs of CPU whatever its size (the hand-off to the threadpool and back, then the copy):
 * with 64 KiB chunks (about 110 lines) that was 0.5-0.8 µs per line; 256 KiB made it a quarter
 * (bench/research/observability-record.ts). Under wrk at 30k lines/s, the share of a CPU profile spent in the write
 * fell from 2.5% (256 KiB) to 1.5% (1 MiB). A chunk's pages become resident only as lines fill them, so an idle or
 * quiet sidecar does not hold the megabyte.
 */
const CHUNK_BYTES = 1024 * 1024;
const FLUSH_MS = 100;
/** Spare chunks kept for reuse, so a steady log allocates nothing. */
const SPARE_CHUNKS = 2;

interface Pending {
  readonly chunk: Buffer;
  readonly length: number;
}

export class LineWriter {
  #fd: number;
  readonly #ownsFd: boolean;
  readonly #path: string;
  /** Descriptors of files rotated away by reopen(), closed once the write in flight on them is done. */
  readonly #stale: number[] = [];
  #chunk: Buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  #used = 0;
  /** Filled chunks waiting for (or in) the write; the head is the one being written while #writing. */
  readonly #queue: Pending[] = [];
  #queuedBytes = 0;
  readonly #spare: Buffer[] = [];
  #writing = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  dropped = 0;

  constructor(target: 'stdout' | 'stderr' | string) {
    this.#path = target;
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
    // UTF-8 needs at most 3 bytes per UTF-16 unit: with that much room the line always fits whole.
    const chunk = this.reserve(line.length * 3);
    if (chunk !== undefined) this.commit(this.#used + chunk.write(line, this.#used));
  }

  /**
   * For a caller that encodes its line itself: the chunk, with at least `bytes` free from `offset`, or undefined when
   * the line is to be dropped (counted). Write into it, then commit() the end offset; nothing else in between.
   */
  reserve(bytes: number): Buffer | undefined {
    if (this.#closed || this.#queuedBytes > MAX_BUFFERED) {
      this.dropped++;
      return undefined;
    }
    if (bytes > this.#chunk.length - this.#used) {
      this.#seal();
      if (bytes > this.#chunk.length) this.#chunk = Buffer.allocUnsafe(bytes);
      this.#startWriting();
    }
    return this.#chunk;
  }

  /** Where a reserved line starts in the chunk. */
  get offset(): number {
    return this.#used;
  }

  /** The reserved line ends at `end` (an offset in the chunk reserve() returned). */
  commit(end: number): void {
    this.#used = end;
    if (this.#timer === undefined) this.#timer = setTimeout(this.#onTimer, FLUSH_MS).unref();
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    if (this.#writing) return; // the write's completion sends what gathered meanwhile
    this.#seal();
    this.#startWriting();
  };

  /** Queues the current chunk's lines and starts a fresh chunk. */
  #seal(): void {
    if (this.#used === 0) return;
    this.#queue.push({ chunk: this.#chunk, length: this.#used });
    this.#queuedBytes += this.#used;
    this.#chunk = this.#spare.pop() ?? Buffer.allocUnsafe(CHUNK_BYTES);
    this.#used = 0;
  }

  #startWriting(): void {
    if (this.#writing || this.#queue.length === 0) return;
    this.#writing = true;
    this.#writeHead(0);
  }

  /**
   * Log rotation: after `mv access.log access.log.1`, opens the path again, so new lines go to a new file. Lines
   * already handed to a write finish in the old file. A no-op for stdout and stderr.
   */
  reopen(): void {
    if (!this.#ownsFd || this.#closed) return;
    const next = fs.openSync(this.#path, 'a');
    this.#stale.push(this.#fd);
    this.#fd = next;
    if (!this.#writing) this.#closeStale();
  }

  #closeStale(): void {
    for (const fd of this.#stale.splice(0)) {
      try {
        fs.closeSync(fd);
      } catch {
        // already gone
      }
    }
  }

  #writeHead(offset: number, fd = this.#fd): void {
    const head = this.#queue[0]!;
    fs.write(fd, head.chunk, offset, head.length - offset, null, (err, written) => {
      if (err) {
        // A non-blocking pipe that is full: try again shortly. Any other error: these lines are lost, not the request.
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          setTimeout(() => this.#writeHead(offset, fd), 5).unref();
          return;
        }
      } else if (offset + written < head.length) {
        this.#writeHead(offset + written, fd);
        return;
      }
      if (this.#stale.length > 0) this.#closeStale();
      this.#queue.shift();
      this.#queuedBytes -= head.length;
      if (head.chunk.length === CHUNK_BYTES && this.#spare.length < SPARE_CHUNKS) this.#spare.push(head.chunk);
      this.#writing = false;
      // Lines that arrived during the write go out now if a chunk filled, else with the timer (batching, not chasing).
      if (this.#queue.length > 0) this.#startWriting();
      else if (this.#used > 0 && this.#timer === undefined) this.#timer = setTimeout(this.#onTimer, FLUSH_MS).unref();
    });
  }

  /** Writes what is left synchronously (at shutdown) and stops accepting lines. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#seal();
    // A write in flight keeps its chunk; everything after it is written here, in order.
    const rest = this.#writing ? this.#queue.slice(1) : this.#queue;
    try {
      for (const p of rest) fs.writeSync(this.#fd, p.chunk, 0, p.length);
      if (this.#ownsFd) fs.closeSync(this.#fd);
      this.#closeStale();
    } catch {
      // the destination is gone; nothing more to do at exit
    }
  }
}
