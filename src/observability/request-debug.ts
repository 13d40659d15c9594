// Requests that explain themselves: bounded rings of recent requests (admin /debug/requests) and their story in
// plain words. Failed and slow requests go to their own ring so a burst of successes does not push them out.
// No header is recorded (so no sensitive header can show here or on the dashboard); credential query values are masked.
import { RESPONSE_FLAGS, type ResponseFlag } from '../core/flags.js';
import type { AttemptTrace, RequestContext, RequestTrace } from '../core/service.js';
import { redactQuery } from './access-fields.js';

export type { AttemptTrace, RequestTrace };

export interface DebugRequestsConfig {
  readonly enabled: boolean;
  /** Recent successful (and fast) requests kept. */
  readonly max_requests: number;
  /** Recent failed or slow requests kept. */
  readonly max_failed_requests: number;
  /** Bytes each ring may hold (an estimate of the record's JSON size). */
  readonly max_bytes: number;
  /** A request at least this slow (ms) is kept with the failed ones. */
  readonly slow_threshold: number;
  /**
   * Successful, fast requests recorded per clock second at most; failed and slow ones are always recorded. Under load
   * a record per request was most of the ring's cost (each one retained, promoted, then collected from old space).
   */
  readonly max_ok_per_second: number;
}

export const DEFAULT_DEBUG_REQUESTS: DebugRequestsConfig = { enabled: true, max_requests: 256, max_failed_requests: 256, max_bytes: 1 << 20, slow_threshold: 1000, max_ok_per_second: 200 };

export interface DebugRecord {
  readonly id: string;
  /** Unix ms when the request arrived. */
  readonly at: number;
  readonly listener: string;
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly route: string;
  readonly cluster: string;
  readonly status: number;
  readonly durationMs: number;
  readonly flag: ResponseFlag | undefined;
  readonly error: string | undefined;
  /** Remaining budget when the request arrived, ms (undefined when none). */
  readonly deadlineMs: number | undefined;
  readonly attempts: readonly AttemptTrace[];
  /** Attempts the cluster counted (may exceed `attempts` when detail was capped). */
  readonly attemptCount: number;
  readonly failed: boolean;
  readonly slow: boolean;
  /** Decisions (retry, breaker, budget, outlier) in the order they were made. */
  readonly decisions: readonly string[];
  readonly bytes: number;
}

/** At most this many attempts and decisions per request are kept (a runaway retry loop stays bounded). */
const MAX_DETAIL = 16;
const NONE: readonly never[] = Object.freeze([]);

/** A fixed-capacity ring bounded by count and by bytes; the oldest records go first. */
export class Ring {
  readonly #items: (DebugRecord | undefined)[];
  #head = 0;
  #size = 0;
  #bytes = 0;
  constructor(
    readonly capacity: number,
    readonly maxBytes: number,
  ) {
    this.#items = new Array<DebugRecord | undefined>(Math.max(0, capacity));
  }
  push(r: DebugRecord): void {
    if (this.capacity === 0 || r.bytes > this.maxBytes) return;
    while (this.#size > 0 && (this.#size === this.capacity || this.#bytes + r.bytes > this.maxBytes)) this.#dropOldest();
    this.#items[(this.#head + this.#size) % this.capacity] = r;
    this.#size++;
    this.#bytes += r.bytes;
  }
  #dropOldest(): void {
    const old = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.capacity;
    this.#size--;
    this.#bytes -= old?.bytes ?? 0;
  }
  get size(): number {
    return this.#size;
  }
  get bytes(): number {
    return this.#bytes;
  }
  /** Newest first. */
  list(): DebugRecord[] {
    const out: DebugRecord[] = [];
    for (let i = this.#size - 1; i >= 0; i--) {
      const r = this.#items[(this.#head + i) % this.capacity];
      if (r) out.push(r);
    }
    return out;
  }
  find(id: string): DebugRecord | undefined {
    for (let i = this.#size - 1; i >= 0; i--) {
      const r = this.#items[(this.#head + i) % this.capacity];
      if (r?.id === id) return r;
    }
    return undefined;
  }
}

export interface FinishedRequest {
  method: string;
  authority: string;
  path: string;
}

/** The recorder the exchange reports every finished request to; a disabled one costs one branch per request. */
export class DebugRequests {
  #config: DebugRequestsConfig = { ...DEFAULT_DEBUG_REQUESTS, enabled: false };
  #ok = new Ring(0, 0);
  #bad = new Ring(0, 0);
  /** Read by the cluster and retry layer before they build any detail. */
  enabled = false;
  /** The clock second the per-second count of successful requests is for, and that count. */
  #second = -1;
  #okThisSecond = 0;
  /** Successful, fast requests not kept because max_ok_per_second was reached (since start). */
  #skippedOk = 0;

  constructor(private readonly now: () => number = Date.now) {}

  configure(c: DebugRequestsConfig): void {
    const same = this.#config.max_requests === c.max_requests && this.#config.max_failed_requests === c.max_failed_requests && this.#config.max_bytes === c.max_bytes;
    this.#config = c;
    this.enabled = c.enabled;
    if (!c.enabled) {
      this.#ok = new Ring(0, 0);
      this.#bad = new Ring(0, 0);
    } else if (!same || this.#ok.capacity === 0) {
      this.#ok = new Ring(c.max_requests, c.max_bytes);
      this.#bad = new Ring(c.max_failed_requests, c.max_bytes);
    }
  }

  get config(): DebugRequestsConfig {
    return this.#config;
  }

  /** Called once per finished exchange (exchange.record). */
  record(req: FinishedRequest, ctx: RequestContext, status: number, durationMs: number): void {
    if (!this.enabled) return;
    const failed = status >= 500 || status === 499 || ctx.flag !== undefined;
    const slow = durationMs >= this.#config.slow_threshold;
    const now = this.now();
    if (!failed && !slow) {
      // Time-bucketed: the first max_ok_per_second successes of each clock second are kept, the rest only counted.
      const second = Math.floor(now / 1000);
      if (second !== this.#second) {
        this.#second = second;
        this.#okThisSecond = 0;
      }
      if (this.#okThisSecond >= this.#config.max_ok_per_second) {
        this.#skippedOk++;
        return;
      }
      this.#okThisSecond++;
    }
    const attempts = ctx.trace?.attempts ?? NONE;
    const decisions = ctx.trace?.decisions ?? NONE;
    const authority = req.authority.length > 256 ? req.authority.slice(0, 256) : req.authority;
    // Credentials read from the query are masked here as in the access log (the dashboard shows these records too).
    const full = ctx.redactQuery === undefined ? req.path : redactQuery(req.path, ctx.redactQuery);
    const path = full.length > 512 ? full.slice(0, 512) : full;
    const error = ctx.error !== undefined && ctx.error.length > 1024 ? ctx.error.slice(0, 1024) : ctx.error;
    // An estimate of the JSON size: fixed fields plus the strings; good enough to bound memory.
    let bytes = 200 + authority.length + path.length + ctx.route.length + ctx.cluster.length + (error?.length ?? 0) + ctx.requestId.length;
    for (const a of attempts) bytes += 80 + a.endpoint.length + (a.error?.length ?? 0) + a.outcome.length;
    for (const d of decisions) bytes += d.length + 4;
    // One object per request, built once (this runs for every request while the recorder is on).
    const rec: DebugRecord = {
      id: ctx.requestId,
      at: now - durationMs,
      listener: ctx.listener,
      method: req.method,
      authority,
      path,
      route: ctx.route,
      cluster: ctx.cluster,
      status,
      durationMs: Math.round(durationMs * 1000) / 1000,
      flag: ctx.flag,
      error,
      deadlineMs: Number.isFinite(ctx.deadline) ? Math.round(ctx.deadline - ctx.startTime) : undefined,
      attempts,
      attemptCount: ctx.attempts,
      failed,
      slow,
      decisions,
      bytes,
    };
    (failed || slow ? this.#bad : this.#ok).push(rec);
  }

  find(id: string): DebugRecord | undefined {
    return this.#bad.find(id) ?? this.#ok.find(id);
  }

  /** Newest first; failed and slow ones, then the others. */
  list(): { failed: DebugRecord[]; recent: DebugRecord[]; config: DebugRequestsConfig; bytes: number; skippedOk: number } {
    return { failed: this.#bad.list(), recent: this.#ok.list(), config: this.#config, bytes: this.#bad.bytes + this.#ok.bytes, skippedOk: this.#skippedOk };
  }
}

export function traceOf(ctx: RequestContext): RequestTrace {
  let t = ctx.trace;
  if (!t) {
    t = { attempts: [], decisions: [] };
    ctx.trace = t;
  }
  return t;
}

const responseOutcomes: string[] = [];
/** "response 200": one string per status rather than one per request. */
export function responseOutcome(status: number): string {
  return (responseOutcomes[status] ??= `response ${status}`);
}

export function noteAttempt(ctx: RequestContext, a: AttemptTrace): void {
  const t = ctx.trace;
  // Most requests note one attempt and nothing else: an array of exactly that one (push would grow it to 17 slots).
  if (t === undefined) ctx.trace = { attempts: [a], decisions: [] };
  else if (t.attempts.length < MAX_DETAIL) t.attempts.push(a);
}

export function noteDecision(ctx: RequestContext, d: string): void {
  const t = traceOf(ctx);
  if (t.decisions.length < MAX_DETAIL) t.decisions.push(d);
}

const ms = (v: number): string => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`);

/** The request's story in plain words: what happened, attempt by attempt, and why it ended as it did. */
export function story(r: DebugRecord): string {
  const lines: string[] = [];
  lines.push(`Request ${r.id}: ${r.method} ${r.authority}${r.path}`);
  lines.push(`Arrived ${new Date(r.at).toISOString()} on listener ${r.listener}; answered ${r.status} after ${ms(r.durationMs)}.`);
  if (r.route === '') lines.push('No route matched it.');
  else lines.push(`Route ${r.route} sent it to cluster ${r.cluster || '(none)'}.`);
  if (r.deadlineMs !== undefined) lines.push(`It had a deadline of ${ms(r.deadlineMs)}.`);
  if (r.attempts.length === 0 && r.route !== '') lines.push('No upstream attempt was made.');
  r.attempts.forEach((a, i) => {
    lines.push(`Attempt ${i + 1} to ${a.endpoint}: started at +${ms(a.start)}, took ${ms(a.duration)}, ${a.outcome}.`);
  });
  if (r.attemptCount > r.attempts.length) lines.push(`(${r.attemptCount - r.attempts.length} more attempts not shown.)`);
  for (const d of r.decisions) lines.push(`Decision: ${d}.`);
  lines.push(`Outcome: ${verdict(r)}`);
  return `${lines.join('\n')}\n`;
}

function verdict(r: DebugRecord): string {
  if (r.flag) {
    const meaning = RESPONSE_FLAGS[r.flag]?.meaning ?? '';
    return `failed with response flag ${r.flag}${meaning ? ` (${meaning})` : ''}: ${r.error ?? 'no further cause recorded'}.`;
  }
  if (r.status >= 500) return `the upstream answered ${r.status}${r.attempts.length > 1 ? ` after ${r.attempts.length} attempts` : ''}.`;
  if (r.slow) {
    const slowest = r.attempts.reduce<AttemptTrace | undefined>((m, a) => (m === undefined || a.duration > m.duration ? a : m), undefined);
    const upstream = r.attempts.reduce((s, a) => s + a.duration, 0);
    if (slowest && upstream >= r.durationMs * 0.5) return `succeeded but slowly: most of the time (${ms(upstream)} of ${ms(r.durationMs)}) was spent upstream, the slowest attempt at ${slowest.endpoint}.`;
    return `succeeded but slowly: ${ms(r.durationMs - upstream)} of ${ms(r.durationMs)} went outside upstream attempts (body transfer, queueing, filters).`;
  }
  return `succeeded (${r.status}).`;
}
