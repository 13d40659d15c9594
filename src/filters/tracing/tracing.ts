// tracing: a listener-level filter that opens the request's SERVER span (reading the caller's trace context), and a
// per-attempt layer, composed around the cluster's attempts, that sends each upstream attempt (retries and hedges
// alike) as a CLIENT span of it with a traceparent naming that span. Spans are plain objects until export; an
// unsampled request records nothing unless a tail rule (always_sample) could keep it.
import { isProxyError } from '../../core/errors.js';
import { HeaderList } from '../../core/headers.js';
import type { AttemptObserver, HttpService, Layer, ProxyRequest, ProxyResponse, RequestContext, RequestSpans, ResponseBody } from '../../core/service.js';
import type { AttemptRequest } from '../../cluster/cluster.js';
import type { SidecarMetrics } from '../../observability/catalogue.js';
import { otlpHttpTransport } from '../../upstream/otlp-post.js';
import type { FilterFactory } from '../filter.js';
import { BatchExporter, type DropReason } from './exporter.js';
import { randomIds, type IdSource } from './ids.js';
import { loadOtlpEncoder } from './otlp.js';
import { formatB3Single, formatTraceparent, parseTraceparent, parseTracestate, readB3Decision, readParent, type ParentContext } from './propagation.js';
import { headSampled, tailActive, tailKeep, type TailRule } from './sampler.js';
import type { TracingConfig } from './schema.js';
import { epochMs, SPAN_KIND_CLIENT, SPAN_KIND_SERVER, type AttributeValue, type SpanRecord } from './span.js';

/** Where finished, kept spans go (the batch exporter; tests collect them). */
export interface SpanSink {
  add(span: SpanRecord): void;
}

export interface TracerDeps {
  readonly sink: SpanSink;
  readonly ids?: IdSource;
  /** Monotonic ms on the performance.now() scale, like RequestContext.startTime. */
  readonly now?: () => number;
}

/** What a config compiles to, once per filter instance. */
interface Tracer {
  readonly ratio: number;
  readonly tail: TailRule;
  readonly recordUnsampled: boolean;
  readonly b3: boolean;
  readonly b3multi: boolean;
  readonly ids: IdSource;
  readonly sink: SpanSink;
  readonly now: () => number;
}

const host = (authority: string): string => {
  if (authority.startsWith('[')) return authority.slice(1, Math.max(1, authority.indexOf(']')));
  const c = authority.lastIndexOf(':');
  return c < 0 ? authority : authority.slice(0, c);
};
const portOf = (address: string): number | undefined => {
  const m = /:(\d+)$/.exec(address);
  return m ? Number(m[1]) : undefined;
};
const pathOf = (path: string): string => {
  const q = path.indexOf('?');
  return q < 0 ? path : path.slice(0, q);
};

/** error.type (OTel semantic conventions): the failure's cause code or flag, else the 5xx status as a string. */
function errorType(status: number, failure: unknown): string | undefined {
  if (isProxyError(failure)) return failure.code ?? failure.flag;
  if (failure !== undefined) return failure instanceof Error ? failure.name : 'error';
  return status >= 500 ? String(status) : undefined;
}

/** A header's value when it appears once; two traceparent headers are two parents, which W3C treats as none. */
function onlyValue(headers: HeaderList, name: string): string | undefined {
  const raw = headers.raw;
  let v: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i] !== name) continue;
    if (v !== undefined) return undefined;
    v = raw[i + 1];
  }
  return v;
}

const SEEN_TRACEPARENT = 1;
const SEEN_TRACESTATE = 2;
const SEEN_B3 = 4;
/** Which trace-context headers the list holds, as SEEN_* bits (names are lower-case). */
function traceHeadersIn(headers: HeaderList): number {
  const raw = headers.raw;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    // Every name we look for starts with t, b or x: one comparison rules most headers out.
    const c = n.charCodeAt(0);
    if (c !== 0x74 && c !== 0x62 && c !== 0x78) continue;
    if (n === 'traceparent') seen |= SEEN_TRACEPARENT;
    else if (n === 'tracestate') seen |= SEEN_TRACESTATE;
    else if (n === 'b3' || n.startsWith('x-b3-')) seen |= SEEN_B3;
  }
  return seen;
}

/** Removes b3 and every x-b3-* header in one pass over the list (names are lower-case). */
function removeB3(headers: HeaderList): void {
  const raw = headers.raw;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n === 'b3' || n.startsWith('x-b3-')) {
      raw.splice(i, 2);
      i -= 2;
    }
  }
}

/** Whether a streamed body ended badly (reset, cut short): its span is an error whatever the status said. */
const bodyFailed = (body: ResponseBody | null): boolean =>
  body !== null && !(body instanceof Uint8Array) && (body.errored !== null || !body.readableEnded);

/** A finished upstream attempt, held until the request's keep decision; a client span only if kept. */
interface AttemptRecord {
  readonly spanId: string;
  readonly start: number;
  readonly end: number;
  readonly endpoint: string;
  readonly n: number;
  readonly hedge: boolean;
  readonly status: number;
  readonly failure: unknown;
  readonly route: string;
  readonly cluster: string;
  readonly upstreamIdentity: string | undefined;
}

/**
 * An attempt in flight: what its client span needs, known when it is sent; the cluster reports its end
 * (AttemptObserver), and only an attempt the cluster counted (sent()) becomes a record.
 */
class OpenAttempt implements AttemptObserver {
  #n = 0;
  #endpoint = '';
  constructor(
    private readonly scope: Scope,
    private readonly ctx: RequestContext,
    private readonly spanId: string,
    private readonly start: number,
    private readonly hedge: boolean,
  ) {}

  sent(n: number, endpoint: string): void {
    this.#n = n;
    this.#endpoint = endpoint;
  }

  attemptEnded(status: number, failure: unknown, body: ResponseBody | null): void {
    if (this.#n === 0) return;
    const ctx = this.ctx;
    this.scope.attemptEnded({
      spanId: this.spanId,
      start: this.start,
      end: this.scope.now(),
      endpoint: this.#endpoint,
      n: this.#n,
      hedge: this.hedge,
      status,
      failure: failure ?? (bodyFailed(body) ? new Error('response body cut short') : undefined),
      route: ctx.route,
      cluster: ctx.cluster,
      upstreamIdentity: ctx.upstreamIdentity,
    });
  }
}

/**
 * One request's spans: the server span, the client spans of its attempts, and the keep decision at its end. While
 * recording it holds only what the spans will need (strings it already has, one small record per attempt); the span
 * objects and their attributes are built at the end, and only for a request that is kept, so a tail rule that lets
 * most requests go costs little more than no tracing.
 */
class Scope implements RequestSpans {
  readonly #t: Tracer;
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
  /** Spans are recorded: sampled, or held for the tail decision. */
  readonly recording: boolean;
  readonly #traceState: string | undefined;
  readonly #parent: ParentContext | undefined;
  /** The request as it arrived at this filter (a later rewrite does not change the server span). */
  readonly #method: string;
  readonly #path: string;
  readonly #scheme: string;
  readonly #authority: string;
  /** Finished attempts held until the request ends (only while recording); undefined once it ended. */
  #held: AttemptRecord[] | undefined;
  /** Decided at the end: the request's spans are exported. */
  #kept = false;

  constructor(t: Tracer, req: ProxyRequest) {
    this.#t = t;
    const headers = req.headers;
    // One pass says which trace headers came at all; most requests from an app carry none, and then nothing else
    // looks for them.
    const seen = traceHeadersIn(headers);
    const b3 = (seen & SEEN_B3) !== 0;
    let parent: ParentContext | undefined;
    if (seen !== 0) {
      const get = (n: string): string | undefined => (n === 'traceparent' ? onlyValue(headers, n) : headers.get(n));
      parent = b3 ? readParent(get) : parseTraceparent(get('traceparent'));
    }
    this.#parent = parent;
    this.traceId = parent?.traceId ?? t.ids.traceId();
    this.spanId = t.ids.spanId();
    // Without a parent, a B3 caller may still have decided (`b3: 0`): followed like a parent's flag.
    const decision = parent === undefined && b3 ? readB3Decision((n) => headers.get(n)) : undefined;
    this.sampled = decision ?? headSampled(parent, this.traceId, t.ratio);
    this.recording = this.sampled || t.recordUnsampled;
    if ((seen & SEEN_TRACESTATE) !== 0) {
      // Only its valid, bounded form goes on (and into every span); an invalid one is dropped, not passed through.
      // W3C: a tracestate without a valid traceparent is not passed on.
      this.#traceState = parent?.format === 'w3c' ? parseTracestate(headers.getAll('tracestate')) : undefined;
      if (this.#traceState === undefined) headers.remove('tracestate');
    }
    // The caller's B3 headers name the caller's span (or carry a decision we may not follow): never passed on beside
    // ours, whichever format the parent came in.
    if (b3) removeB3(headers);
    this.#method = req.method;
    this.#path = req.path;
    this.#scheme = req.scheme;
    this.#authority = req.authority;
    if (this.recording) this.#held = [];
  }

  /** The tracer's clock (ms, performance.now() scale). */
  now(): number {
    return this.#t.now();
  }

  /** One upstream attempt as a client span: its own span id in traceparent (and B3 when configured). */
  attempt(req: ProxyRequest, send: HttpService): Promise<ProxyResponse> {
    const t = this.#t;
    const ctx = req.context;
    const hedge = (req as AttemptRequest).hedge === true;
    // A hedge runs beside the first attempt, which may not have written its head yet: it gets its own header list.
    const headers = hedge ? new HeaderList([...req.headers.raw]) : req.headers;
    const attemptReq = hedge ? { ...req, headers } : req;
    const spanId = t.ids.spanId();
    headers.set('traceparent', formatTraceparent(this.traceId, spanId, this.sampled));
    if (this.#traceState !== undefined) headers.set('tracestate', this.#traceState);
    if (t.b3) headers.set('b3', formatB3Single(this.traceId, spanId, this.sampled));
    if (t.b3multi) {
      headers.set('x-b3-traceid', this.traceId);
      headers.set('x-b3-spanid', spanId);
      headers.set('x-b3-parentspanid', this.spanId);
      headers.set('x-b3-sampled', this.sampled ? '1' : '0');
    }
    if (!this.recording) return send(attemptReq);
    const before = ctx.attempts;
    const open = new OpenAttempt(this, ctx, spanId, t.now(), hedge);
    // The cluster takes it synchronously and says when this attempt ends (no promise or listener of our own).
    ctx.attemptObserver = open;
    const p = send(attemptReq);
    ctx.attemptObserver = undefined;
    // The cluster picks the endpoint and counts the attempt before its first await; nothing counted: nothing was sent
    // (no healthy endpoint, a breaker), and the server span carries that failure.
    if (ctx.attempts !== before) open.sent(ctx.attempts, ctx.endpoint);
    return p;
  }

  /** An attempt the cluster reported ended (from OpenAttempt): held until the keep decision, or sent if already kept. */
  attemptEnded(a: AttemptRecord): void {
    if (this.#held !== undefined) this.#held.push(a);
    else if (this.#kept) this.#t.sink.add(this.#clientSpan(a)); // a hedge that lost, ending after its request
  }

  #clientSpan(a: AttemptRecord): SpanRecord {
    const { status, failure } = a;
    const attributes: Record<string, AttributeValue> = {
      'http.request.method': this.#method,
      'url.path': pathOf(this.#path),
      'server.address': host(a.endpoint),
      'network.peer.address': host(a.endpoint),
      'sidecar.route': a.route,
      'sidecar.cluster': a.cluster,
      'sidecar.attempt': a.n,
      'sidecar.retry': a.n > 1 && !a.hedge,
      'sidecar.hedge': a.hedge,
    };
    const port = portOf(a.endpoint);
    if (port !== undefined) attributes['server.port'] = port;
    if (failure === undefined || !isProxyError(failure)) attributes['http.response.status_code'] = status;
    const type = errorType(status, failure);
    if (type !== undefined) attributes['error.type'] = type;
    if (isProxyError(failure)) attributes['sidecar.response_flags'] = failure.flag;
    if (a.upstreamIdentity !== undefined) attributes['sidecar.upstream.identity'] = a.upstreamIdentity;
    return {
      traceId: this.traceId,
      spanId: a.spanId,
      parentSpanId: this.spanId,
      parentRemote: false,
      traceState: this.#traceState,
      kind: SPAN_KIND_CLIENT,
      name: `${this.#method} ${a.cluster}`,
      start: epochMs(a.start),
      end: epochMs(a.end),
      attributes,
      error: type !== undefined,
      message: failure instanceof Error ? failure.message : undefined,
    };
  }

  #serverSpan(ctx: RequestContext, status: number, end: number): SpanRecord {
    const attributes: Record<string, AttributeValue> = {
      'http.request.method': this.#method,
      'url.path': pathOf(this.#path),
      'url.scheme': this.#scheme,
      'server.address': host(this.#authority),
      'network.peer.address': host(ctx.downstreamAddress),
      'network.protocol.version': ctx.downstreamProtocol === 'HTTP/2' ? '2' : ctx.downstreamProtocol === 'HTTP/1.0' ? '1.0' : '1.1',
      'sidecar.listener': ctx.listener,
      'sidecar.request_id': ctx.requestId,
    };
    const port = portOf(this.#authority);
    if (port !== undefined) attributes['server.port'] = port;
    attributes['http.response.status_code'] = status;
    attributes['sidecar.route'] = ctx.route;
    attributes['sidecar.cluster'] = ctx.cluster;
    attributes['sidecar.attempt'] = ctx.attempts;
    const flag = ctx.flag;
    if (flag !== undefined) attributes['sidecar.response_flags'] = flag;
    if (ctx.endpoint !== '') attributes['sidecar.upstream'] = ctx.endpoint;
    if (ctx.peerIdentity !== undefined) attributes['sidecar.peer.identity'] = ctx.peerIdentity;
    // A 4xx is the caller's error, not the server span's (OTel HTTP conventions). The cause code of a sidecar
    // failure (connect-refused, ...), else its flag, else the status.
    const error = status >= 500;
    if (error) attributes['error.type'] = ctx.upstreamCause ?? flag ?? String(status);
    const parent = this.#parent;
    return {
      traceId: this.traceId,
      spanId: this.spanId,
      parentSpanId: parent?.spanId,
      parentRemote: parent !== undefined,
      traceState: this.#traceState,
      kind: SPAN_KIND_SERVER,
      name: ctx.route !== '' ? `${this.#method} ${ctx.route}` : this.#method,
      start: epochMs(ctx.startTime),
      end: epochMs(end),
      attributes,
      error,
      message: ctx.error,
    };
  }

  /**
   * The exchange is recorded (its response written, or failed): decide whether the request's spans are exported, and
   * only then build them. Called once, by exchange.record(); later calls do nothing.
   */
  end(ctx: RequestContext, status: number): void {
    const held = this.#held;
    if (held === undefined) return;
    this.#held = undefined;
    const now = this.#t.now();
    this.#kept = this.sampled || tailKeep(this.#t.tail, status, now - ctx.startTime);
    if (!this.#kept) return;
    const sink = this.#t.sink;
    sink.add(this.#serverSpan(ctx, status, now));
    for (const a of held) sink.add(this.#clientSpan(a));
  }
}

/**
 * The listener-level layer: opens the request's scope; the exchange closes it when it records the request
 * (RequestSpans.end), so nothing here waits for the response.
 */
export function tracingLayer(t: Tracer): Layer {
  return (next) => (req) => {
    const ctx = req.context;
    const scope = new Scope(t, req);
    ctx.traceId = scope.traceId;
    ctx.spanId = scope.spanId;
    ctx.spans = scope;
    return next(req);
  };
}

/** The per-attempt layer (innermost, around the cluster's attempts): a request without a scope passes as it is. */
export const tracingAttemptLayer: Layer = (next) => (req) => {
  const spans = req.context.spans;
  return spans === undefined ? next(req) : spans.attempt(req, next);
};

export function compileTracer(cfg: TracingConfig, deps: TracerDeps): Tracer {
  const tail: TailRule = { errors: cfg.always_sample.errors, slowerThan: cfg.always_sample.slower_than };
  return {
    ratio: cfg.sampling_ratio,
    tail,
    recordUnsampled: tailActive(tail),
    b3: cfg.propagation.includes('b3'),
    b3multi: cfg.propagation.includes('b3multi'),
    ids: deps.ids ?? randomIds(),
    sink: deps.sink,
    now: deps.now ?? (() => performance.now()),
  };
}

const VERSION = '0.1.0';

/**
 * One exporter per collector and batch settings for the life of the process (and per metrics registry): the filter
 * is built anew for every listener and snapshot, and they share the queue, its bound and its connection.
 */
const exporters = new WeakMap<SidecarMetrics, Map<string, BatchExporter>>();
export function sharedExporter(cfg: TracingConfig, metrics: SidecarMetrics): BatchExporter {
  let byKey = exporters.get(metrics);
  if (byKey === undefined) {
    byKey = new Map();
    exporters.set(metrics, byKey);
  }
  const o = cfg.otlp;
  const key = JSON.stringify([o.endpoint, o.headers, o.timeout, cfg.service_name, cfg.max_queue, cfg.max_batch, cfg.flush_interval]);
  let e = byKey.get(key);
  if (e === undefined) {
    const dropped = (reason: DropReason) => metrics.tracingSpansDropped.get({ reason });
    e = new BatchExporter(
      { maxQueue: cfg.max_queue, maxBatch: cfg.max_batch, flushInterval: cfg.flush_interval },
      otlpHttpTransport(o.endpoint, o.headers, o.timeout),
      () => loadOtlpEncoder(cfg.service_name, VERSION),
      { exported: metrics.tracingSpansExported.get(), dropped },
      (fn, ms) => {
        const timer = setTimeout(fn, ms);
        timer.unref();
        return () => clearTimeout(timer);
      },
    );
    // Each distinct export config (a rotated token, a new collector) adds one; the oldest beyond a few is let go once
    // its spans are sent (snapshots still holding it keep it until they retire), so reloads cannot pile them up.
    if (byKey.size >= MAX_EXPORTERS) {
      const [oldestKey, oldest] = byKey.entries().next().value as [string, BatchExporter];
      byKey.delete(oldestKey);
      void oldest.flush();
    }
    byKey.set(key, e);
  }
  return e;
}
const MAX_EXPORTERS = 8;

/**
 * Sends what the process's exporters still hold (at shutdown, once the listeners are closed and every span has
 * ended), giving up after `withinMs`: a collector that is down must not hold the exit up.
 */
export async function flushExporters(metrics: SidecarMetrics, withinMs: number): Promise<void> {
  const byKey = exporters.get(metrics);
  if (byKey === undefined || byKey.size === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const giveUp = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, withinMs);
    timer.unref();
  });
  await Promise.race([Promise.all([...byKey.values()].map((e) => e.flush())), giveUp]);
  clearTimeout(timer);
}

export const tracingFilter: FilterFactory<TracingConfig> = {
  type: 'tracing',
  create: (cfg, deps) => tracingLayer(compileTracer(cfg, { sink: sharedExporter(cfg, deps.metrics) })),
  attempt: tracingAttemptLayer,
};
