// tracing: a listener-level filter that opens the request's SERVER span (reading the caller's trace context), and a
// per-attempt layer, composed around the cluster's attempts, that sends each upstream attempt (retries and hedges
// alike) as a CLIENT span of it with a traceparent naming that span. Spans are plain objects until export; an
// unsampled request records nothing unless a tail rule (always_sample) could keep it.
import { whenBodyDone } from '../../core/body.js';
import { isProxyError } from '../../core/errors.js';
import { HeaderList } from '../../core/headers.js';
import type { HttpService, Layer, ProxyRequest, ProxyResponse, RequestContext, RequestSpans, ResponseBody } from '../../core/service.js';
import type { AttemptRequest } from '../../cluster/cluster.js';
import type { SidecarMetrics } from '../../observability/catalogue.js';
import { otlpHttpTransport } from '../../upstream/otlp-post.js';
import type { FilterFactory } from '../filter.js';
import { BatchExporter, type DropReason } from './exporter.js';
import { randomIds, type IdSource } from './ids.js';
import { loadOtlpEncoder } from './otlp.js';
import { formatB3Single, formatTraceparent, parseTracestate, readB3Decision, readParent } from './propagation.js';
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

/** One request's spans: the server span, the client spans of its attempts, and the keep decision at its end. */
class Scope implements RequestSpans {
  readonly #t: Tracer;
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
  /** Spans are recorded: sampled, or held for the tail decision. */
  readonly recording: boolean;
  readonly #traceState: string | undefined;
  readonly #server: SpanRecord | undefined;
  /** Finished client spans held until the request ends (only while recording); undefined once it ended. */
  #held: SpanRecord[] | undefined;
  /** Decided at the end: the request's spans are exported. */
  #kept = false;

  constructor(t: Tracer, req: ProxyRequest) {
    this.#t = t;
    const ctx = req.context;
    const headers = req.headers;
    const parent = readParent((n) => (n === 'traceparent' ? onlyValue(headers, n) : headers.get(n)));
    this.traceId = parent?.traceId ?? t.ids.traceId();
    this.spanId = t.ids.spanId();
    // Without a parent, a B3 caller may still have decided (`b3: 0`): followed like a parent's flag.
    const decision = parent === undefined ? readB3Decision((n) => headers.get(n)) : undefined;
    this.sampled = decision ?? headSampled(parent, this.traceId, t.ratio);
    this.recording = this.sampled || t.recordUnsampled;
    if (parent?.format === 'w3c') {
      // Only its valid, bounded form goes on (and into every span); an invalid one is dropped, not passed through.
      this.#traceState = headers.has('tracestate') ? parseTracestate(headers.getAll('tracestate')) : undefined;
      if (this.#traceState === undefined) headers.remove('tracestate');
    } else {
      // W3C: a tracestate without a valid traceparent is not passed on.
      headers.remove('tracestate');
    }
    // The caller's B3 headers name the caller's span (or carry a decision we may not follow): never passed on beside
    // ours, whichever format the parent came in.
    removeB3(headers);
    if (this.recording) {
      this.#held = [];
      const attributes: Record<string, AttributeValue> = {
        'http.request.method': req.method,
        'url.path': pathOf(req.path),
        'url.scheme': req.scheme,
        'server.address': host(req.authority),
        'network.peer.address': host(ctx.downstreamAddress),
        'network.protocol.version': ctx.downstreamProtocol === 'HTTP/2' ? '2' : ctx.downstreamProtocol === 'HTTP/1.0' ? '1.0' : '1.1',
        'sidecar.listener': ctx.listener,
        'sidecar.request_id': ctx.requestId,
      };
      const port = portOf(req.authority);
      if (port !== undefined) attributes['server.port'] = port;
      this.#server = {
        traceId: this.traceId,
        spanId: this.spanId,
        parentSpanId: parent?.spanId,
        parentRemote: parent !== undefined,
        traceState: this.#traceState,
        kind: SPAN_KIND_SERVER,
        name: req.method,
        start: epochMs(ctx.startTime),
        end: 0,
        attributes,
        error: false,
        message: undefined,
      };
    }
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
    const before = ctx.attempts;
    const start = t.now();
    const p = send(attemptReq);
    // The cluster picks the endpoint and counts the attempt before its first await; nothing counted: nothing was sent
    // (no healthy endpoint, a breaker), and the server span carries that failure.
    if (!this.recording || ctx.attempts === before) return p;
    const n = ctx.attempts;
    const endpoint = ctx.endpoint;
    const end = (status: number, failure: unknown): void => this.#endClient(req, spanId, start, endpoint, n, hedge, status, failure);
    return p.then(
      (res) => {
        whenBodyDone(res.body, () => end(res.status, bodyFailed(res.body) ? new Error('response body cut short') : undefined));
        return res;
      },
      (err: unknown) => {
        end(isProxyError(err) ? err.status : 502, err);
        throw err;
      },
    );
  }

  #endClient(req: ProxyRequest, spanId: string, start: number, endpoint: string, n: number, hedge: boolean, status: number, failure: unknown): void {
    const ctx = req.context;
    const attributes: Record<string, AttributeValue> = {
      'http.request.method': req.method,
      'url.path': pathOf(req.path),
      'server.address': host(endpoint),
      'network.peer.address': host(endpoint),
      'sidecar.route': ctx.route,
      'sidecar.cluster': ctx.cluster,
      'sidecar.attempt': n,
      'sidecar.retry': n > 1 && !hedge,
      'sidecar.hedge': hedge,
    };
    const port = portOf(endpoint);
    if (port !== undefined) attributes['server.port'] = port;
    if (failure === undefined || !isProxyError(failure)) attributes['http.response.status_code'] = status;
    const type = errorType(status, failure);
    if (type !== undefined) attributes['error.type'] = type;
    if (isProxyError(failure)) attributes['sidecar.response_flags'] = failure.flag;
    if (ctx.upstreamIdentity !== undefined) attributes['sidecar.upstream.identity'] = ctx.upstreamIdentity;
    const span: SpanRecord = {
      traceId: this.traceId,
      spanId,
      parentSpanId: this.spanId,
      parentRemote: false,
      traceState: this.#traceState,
      kind: SPAN_KIND_CLIENT,
      name: `${req.method} ${ctx.cluster}`,
      start: epochMs(start),
      end: epochMs(this.#t.now()),
      attributes,
      error: type !== undefined,
      message: failure instanceof Error ? failure.message : undefined,
    };
    if (this.#held !== undefined) this.#held.push(span);
    else if (this.#kept) this.#t.sink.add(span); // a hedge that lost, ending after its request
  }

  /** The request is over: close the server span and decide whether its spans are exported. */
  end(ctx: RequestContext, status: number, failure: unknown): void {
    const server = this.#server;
    const held = this.#held;
    if (server === undefined || held === undefined) return;
    this.#held = undefined;
    const now = this.#t.now();
    server.end = epochMs(now);
    if (ctx.route !== '') server.name = `${server.attributes['http.request.method'] as string} ${ctx.route}`;
    const a = server.attributes;
    a['http.response.status_code'] = status;
    a['sidecar.route'] = ctx.route;
    a['sidecar.cluster'] = ctx.cluster;
    a['sidecar.attempt'] = ctx.attempts;
    const flag = ctx.flag ?? (isProxyError(failure) ? failure.flag : undefined);
    if (flag !== undefined) a['sidecar.response_flags'] = flag;
    if (ctx.endpoint !== '') a['sidecar.upstream'] = ctx.endpoint;
    if (ctx.peerIdentity !== undefined) a['sidecar.peer.identity'] = ctx.peerIdentity;
    // A 4xx is the caller's error, not the server span's (OTel HTTP conventions).
    const type = status >= 500 ? (errorType(status, failure) ?? flag) : undefined;
    if (type !== undefined) a['error.type'] = type;
    server.error = status >= 500 || (failure !== undefined && !isProxyError(failure));
    server.message = ctx.error ?? (failure instanceof Error ? failure.message : undefined);
    this.#kept = this.sampled || tailKeep(this.#t.tail, status, now - ctx.startTime);
    if (!this.#kept) return;
    const sink = this.#t.sink;
    sink.add(server);
    for (const s of held) sink.add(s);
  }
}

/** The listener-level layer: opens the request's scope and closes it when the response is done (or failed). */
export function tracingLayer(t: Tracer): Layer {
  return (next) => async (req) => {
    const ctx = req.context;
    const scope = new Scope(t, req);
    ctx.traceId = scope.traceId;
    ctx.spanId = scope.spanId;
    ctx.spans = scope;
    let res: ProxyResponse;
    try {
      res = await next(req);
    } catch (err) {
      if (scope.recording) scope.end(ctx, isProxyError(err) ? err.status : 500, err);
      throw err;
    }
    if (scope.recording) whenBodyDone(res.body, () => scope.end(ctx, bodyFailed(res.body) && ctx.flag === undefined ? 499 : res.status, undefined));
    return res;
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
