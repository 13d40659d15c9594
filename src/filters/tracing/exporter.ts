// Batched, bounded span export. Finished spans join a queue of at most max_queue (past it they are dropped and
// counted); a batch goes out when max_batch spans wait or flush_interval after the first one came, one request at a
// time. Nothing here is awaited by a request: a slow or absent collector costs spans (counted), never latency.
import type { Counter } from '../../observability/metrics.js';
import type { Encoder } from './otlp.js';
import type { SpanRecord } from './span.js';

/** Why spans were dropped: sidecar_tracing_spans_dropped_total{reason}. */
export type DropReason = 'queue_full' | 'timeout' | 'unreachable' | 'rejected' | 'encoding';

/** A failed export says why, as a DropReason. */
export class ExportFailure extends Error {
  constructor(
    readonly reason: DropReason,
    message: string,
  ) {
    super(message);
  }
}

/** One POST of an encoded batch; rejects with an ExportFailure (timeout, unreachable, a non-2xx answer). */
export type ExportTransport = (body: Uint8Array) => Promise<void>;

export interface ExporterCounters {
  readonly exported: Counter;
  dropped(reason: DropReason): Counter;
}

export interface ExporterOptions {
  readonly maxQueue: number;
  readonly maxBatch: number;
  readonly flushInterval: number;
}

/** Schedules fn; returns a cancel function. The process's timers are unref'd: a pending flush never holds it open. */
export type Schedule = (fn: () => void, ms: number) => () => void;

export class BatchExporter {
  readonly #opts: ExporterOptions;
  readonly #send: ExportTransport;
  readonly #counters: ExporterCounters;
  readonly #schedule: Schedule;
  readonly #loadEncoder: () => Promise<Encoder>;
  #encoder: Promise<Encoder> | undefined;
  #queue: SpanRecord[] = [];
  #timer: (() => void) | undefined;
  #inFlight: Promise<void> | undefined;

  constructor(opts: ExporterOptions, send: ExportTransport, loadEncoder: () => Promise<Encoder>, counters: ExporterCounters, schedule: Schedule) {
    this.#opts = opts;
    this.#send = send;
    this.#loadEncoder = loadEncoder;
    this.#counters = counters;
    this.#schedule = schedule;
  }

  /** Spans waiting for export. */
  get queued(): number {
    return this.#queue.length;
  }

  add(span: SpanRecord): void {
    const q = this.#queue;
    if (q.length >= this.#opts.maxQueue) {
      this.#counters.dropped('queue_full').inc();
      return;
    }
    q.push(span);
    if (this.#inFlight !== undefined) return; // the export in flight looks at the queue when it is done
    if (q.length >= this.#opts.maxBatch) this.#flushSoon();
    else if (this.#timer === undefined) this.#timer = this.#schedule(() => this.#flushSoon(), this.#opts.flushInterval);
  }

  /** Sends everything queued now, batch by batch; resolves when done (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.#inFlight !== undefined || this.#queue.length > 0) {
      if (this.#inFlight === undefined) this.#flushSoon();
      await this.#inFlight;
    }
  }

  #flushSoon(): void {
    this.#timer?.();
    this.#timer = undefined;
    if (this.#inFlight !== undefined || this.#queue.length === 0) return;
    const batch = this.#queue.length <= this.#opts.maxBatch ? this.#queue : this.#queue.slice(0, this.#opts.maxBatch);
    this.#queue = batch === this.#queue ? [] : this.#queue.slice(batch.length);
    this.#inFlight = this.#export(batch).finally(() => {
      this.#inFlight = undefined;
      const left = this.#queue.length;
      if (left >= this.#opts.maxBatch) this.#flushSoon();
      else if (left > 0 && this.#timer === undefined) this.#timer = this.#schedule(() => this.#flushSoon(), this.#opts.flushInterval);
    });
  }

  async #export(batch: readonly SpanRecord[]): Promise<void> {
    let body: Uint8Array;
    try {
      this.#encoder ??= this.#loadEncoder();
      body = (await this.#encoder)(batch);
    } catch {
      this.#encoder = undefined;
      this.#counters.dropped('encoding').inc(batch.length);
      return;
    }
    try {
      await this.#send(body);
      this.#counters.exported.inc(batch.length);
    } catch (e) {
      this.#counters.dropped(e instanceof ExportFailure ? e.reason : 'unreachable').inc(batch.length);
    }
  }
}
