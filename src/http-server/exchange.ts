// The transport-independent middle of every exchange: route, run the route's pipeline, turn failures into answers, record.
import { newRequestId } from '../core/request-id.js';
import { Cancellation } from '../core/cancel.js';
import { ProxyError } from '../core/errors.js';
import { ERROR_HEADER, RESPONSE_FLAGS, type ResponseFlag } from '../core/flags.js';
import { answerStyle, renderLocal, type AnswerStyle } from './local-answer.js';
import type { HeaderList } from '../core/headers.js';
import { compose, type ProxyRequest, type ProxyResponse, type RequestContext } from '../core/service.js';
import type { AccessLog } from '../observability/access-log.js';
import type { Connector } from '../upstream/connector.js';
import type { RouteStats, SidecarMetrics } from '../observability/catalogue.js';
import type { Logger } from '../observability/logger.js';
import { stripPort } from '../router/matchers.js';
import type { ListenerRuntime } from '../runtime/listener-runtime.js';
import type { RouteRuntime } from '../runtime/route.js';
import type { RuntimeSnapshot } from '../runtime/snapshot.js';
import type { ListenerVia } from '../runtime/via.js';
import { discardBody } from '../core/body.js';

/** What the transport adapters need from the rest of the sidecar. */
export interface ServerDeps {
  /** The snapshot new requests use; swapped atomically on reload. */
  current(): RuntimeSnapshot;
  readonly metrics: SidecarMetrics;
  accessLog(): AccessLog;
  readonly logger: Logger;
  /** The transport seam upstream sockets come from (tunnels too). */
  readonly connector: Connector;
}

/**
 * `scheme`: what the listener's connections speak (a TLS listener passes 'https'); the peer identity is unset until
 * mTLS. `downstreamConnection`: the socket or HTTP/2 session the request came on (fair pool shares key on it).
 */
export function newContext(
  listener: string,
  downstreamAddress: string,
  protocol: RequestContext['downstreamProtocol'],
  requestId: string | undefined,
  scheme: RequestContext['scheme'] = 'http',
  downstreamConnection?: object,
): RequestContext {
  return {
    requestId: requestId || newRequestId(),
    startTime: performance.now(),
    listener,
    downstreamAddress,
    downstreamProtocol: protocol,
    scheme,
    peerIdentity: undefined,
    fromSidecar: false,
    upstreamIdentity: undefined,
    route: '',
    cluster: '',
    endpoint: '',
    attempts: 0,
    flag: undefined,
    error: undefined,
    upstreamOutcome: undefined,
    upstreamCause: undefined,
    deadline: Infinity,
    downstreamConnection,
    poolWait: undefined,
    grpcStatus: undefined,
    // Present from the start (tracing fills them in): one object shape for every context, traced or not.
    traceId: undefined,
    spanId: undefined,
    spans: undefined,
    attemptObserver: undefined,
    // Filled by the debug recorder's notes (noteAttempt): present from the start too, so a note does not change the shape.
    trace: undefined,
  };
}

export interface Dispatched {
  readonly response: ProxyResponse;
  readonly stats: RouteStats;
}

/** Routes and runs a request. Never rejects: failures come back as proxy-generated responses. */
export async function dispatch(lr: ListenerRuntime, req: ProxyRequest, pathname: string, query: string): Promise<Dispatched> {
  const ctx = req.context;
  const expose = lr.exposeErrorDetails;
  const host = stripPort(req.authority.toLowerCase());
  let route: RouteRuntime | undefined = lr.route({ method: req.method, host, pathname, query, headers: req.headers });
  if (!route && lr.config.mode === 'forward' && lr.config.forward.allow_passthrough) {
    if (lr.forwardAllowed(req.authority)) {
      route = lr.passthrough(req.authority);
      // A host outside the mesh: it does not get the mesh's own headers unless forward.passthrough_headers says so.
      undoProxyHeaders(req.headers, ctx, lr.via, lr.config.forward.passthrough_headers);
    } else {
      return unrouted(lr, req, new ProxyError('FP', `forward proxy destination ${req.authority} is not in forward.allowed_hosts of listener ${lr.name}`));
    }
  }
  if (!route) return unrouted(lr, req, new ProxyError('NR', `no route on listener ${lr.name} matches ${req.method} ${host}${pathname}`));
  ctx.route = route.name;
  ctx.cluster = route.cluster;
  try {
    const response = await route.service(req);
    // An upstream answer the sidecar annotated (retries exhausted, a breaker): the cause stays in the access log.
    if (!expose && ctx.error !== undefined && response.headers.has(ERROR_HEADER)) response.headers.set(ERROR_HEADER, genericCause(ctx.flag));
    if (lr.requestIdInResponse) response.headers.set('x-request-id', ctx.requestId);
    return { response, stats: route.stats.get(ctx.cluster) ?? lr.noRouteStats };
  } catch (err) {
    return { response: localResponse(ctx, err, expose, styleOf(lr, req)), stats: route.stats.get(ctx.cluster) ?? lr.noRouteStats };
  }
}

/**
 * No route (or a forward destination not allowed): the listener's filters still see the request first (an
 * authentication filter answers before a 404 would tell what exists), then the local answer.
 */
async function unrouted(lr: ListenerRuntime, req: ProxyRequest, err: ProxyError): Promise<Dispatched> {
  let failure: unknown = err;
  if (lr.filters.length > 0) {
    try {
      const response = await compose(lr.filters.map((f) => f.layer), refuse(err))(req);
      return { response, stats: lr.noRouteStats };
    } catch (e) {
      failure = e;
    }
  }
  req.body?.resume();
  return { response: localResponse(req.context, failure, lr.exposeErrorDetails, styleOf(lr, req)), stats: lr.noRouteStats };
}

const refuse = (err: ProxyError) => (): Promise<ProxyResponse> => Promise.reject(err);

/** What a caller of a listener that hides error details is told: the flag's meaning, no addresses or names. */
export const genericCause = (flag: ResponseFlag | undefined): string => (flag ? RESPONSE_FLAGS[flag].meaning : 'the upstream request failed (see the access log by x-request-id)');

export { statusText } from './local-answer.js';

/**
 * A response the sidecar writes itself, naming its flag and cause in headers, body and context (for the access log).
 * With `expose` false (listeners.expose_error_details) the caller gets the flag and its generic meaning only.
 */
export function localResponse(ctx: RequestContext, err: unknown, expose = true, style: AnswerStyle = 'text'): ProxyResponse {
  const e = err instanceof ProxyError ? err : new ProxyError('IE', `internal error: ${(err as Error)?.message ?? String(err)}`);
  // Say how many tries this answer took (the retry layer writes its own "attempt n/m" when it retried).
  const message = ctx.attempts > 0 && e.attempts === undefined ? `${e.message}; attempt ${ctx.attempts}/${ctx.attempts}` : e.message;
  ctx.flag = e.flag;
  ctx.error = message;
  ctx.upstreamOutcome = e.outcome;
  ctx.upstreamCause = e.code;
  if (e.endpoint) ctx.endpoint = e.endpoint;
  const cause = expose ? message.replace(/[\r\n]+/g, ' ') : genericCause(e.flag);
  return renderLocal({ status: e.status, flag: e.flag, cause, withMeaning: expose, requestId: ctx.requestId, headers: e.headers }, style);
}

/**
 * The answer style for this request: gRPC clients get trailers-only answers where the listener opted in
 * (listeners[].grpc_local_answers); read on failure paths only.
 */
export const styleOf = (lr: ListenerRuntime, req: ProxyRequest): AnswerStyle => (lr.grpcLocalAnswers ? answerStyle(req.headers.get('content-type')) : 'text');

/** Metrics and access log for a finished exchange. */
export function record(
  deps: ServerDeps,
  stats: RouteStats,
  req: { method: string; authority: string; path: string; userAgent: string | undefined; headers?: HeaderList | undefined },
  ctx: RequestContext,
  status: number,
  bytesIn: number,
  bytesOut: number,
  responseHeaders?: HeaderList,
): void {
  const durationMs = performance.now() - ctx.startTime;
  const cls = (status / 100) | 0;
  const counter = stats.responses[cls - 1];
  if (counter) counter.value++;
  stats.duration.observe(durationMs / 1000);
  deps.metrics.answered++;
  if (ctx.flag) deps.metrics.flags.get({ listener: ctx.listener, flag: ctx.flag }).inc();
  if (status >= 500 || status === 499 || ctx.flag !== undefined) deps.metrics.failedAnswers++;
  if (ctx.grpcStatus !== undefined) deps.metrics.grpcCall(ctx.listener, ctx.route, req.path, ctx.grpcStatus, durationMs / 1000);
  const history = deps.metrics.latencyHistory;
  if (history.enabled) history.record(ctx.listener, ctx.route, ctx.cluster, ctx.endpoint, durationMs);
  if (deps.metrics.debugRequests.enabled) deps.metrics.debugRequests.record(req, ctx, status, durationMs);
  ctx.spans?.end(ctx, status);
  // The header lists go by reference: only a format that logs chosen headers reads them.
  deps.accessLog().write({ context: ctx, method: req.method, authority: req.authority, path: req.path, status, bytesIn, bytesOut, durationMs, userAgent: req.userAgent, requestHeaders: req.headers, responseHeaders });
}

/**
 * The downstream went away before the response was complete: blame it (unless a cause is already known), stop the
 * upstream work, and return the status for the log (499 when no response head was sent).
 */
export function abandoned(ctx: RequestContext, cancel: Cancellation, response: ProxyResponse | undefined, headSent: boolean, cutByDrain = false): number {
  if (!ctx.flag && cutByDrain) {
    ctx.flag = 'LR';
    ctx.error = 'closed by the sidecar: drain_timeout ran out before the response was complete';
  } else if (!ctx.flag) {
    ctx.flag = 'DC';
    ctx.error = headSent ? 'downstream closed before the response was complete' : 'downstream closed before the response started';
  }
  cancel.abort(new ProxyError(ctx.flag === 'LR' ? 'LR' : 'DC', ctx.error ?? 'downstream closed'));
  discardBody(response?.body);
  return headSent && response ? response.status : 499;
}

/**
 * Each listener's name in Via (RFC 9110 7.6.3): this process's random id and the listener. A request that already
 * carries it has come back round to the same listener (a forward proxy's passthrough to itself, a cluster pointing
 * at its own listener): it is answered 508 rather than sent round again until a timeout. Another listener of the same
 * process (outbound to inbound) is a legitimate hop. True when the request's Via shows it has already passed through
 * this listener of this process (the names are the listener's ListenerVia, runtime/via.ts).
 */
export function isLoop(via: string | undefined, own: ListenerVia): boolean {
  if (via === undefined) return false;
  return carries(via, own.name) || carries(via, own.pseudonym);
}

/** `name` appears in the Via list as a whole received-by token. */
function carries(via: string, name: string): boolean {
  for (let at = via.indexOf(name); at >= 0; at = via.indexOf(name, at + 1)) {
    const before = at === 0 ? 32 : via.charCodeAt(at - 1);
    const next = via.charCodeAt(at + name.length);
    if (before === 32 /* space */ && (Number.isNaN(next) || next === 44 /* , */ || next === 32)) return true;
  }
  return false;
}

export const loopError = (): ProxyError => new ProxyError('LD', 'request loop: this request has already passed through this listener (see its Via header)');

/**
 * X-Forwarded-*, Via, x-request-id and TE: trailers on the headers going upstream. Keep the order (Via, then the
 * generated x-request-id, appended last but for TE): undoProxyHeaders relies on it.
 */
export function addProxyHeaders(headers: HeaderList, peer: string, authority: string, ctx: RequestContext, own: ListenerVia, hadRequestId: boolean, teTrailers: boolean): void {
  const xff = headers.get('x-forwarded-for');
  if (xff === undefined) headers.add('x-forwarded-for', peer);
  else headers.set('x-forwarded-for', `${xff}, ${peer}`);
  headers.set('x-forwarded-proto', ctx.scheme);
  headers.set('x-forwarded-host', authority);
  headers.add('via', own.entries[ctx.downstreamProtocol]);
  if (!hadRequestId) headers.add('x-request-id', ctx.requestId);
  if (teTrailers) headers.add('te', 'trailers');
}

export interface PassthroughHeaders {
  readonly via: boolean;
  readonly request_id: boolean;
  readonly forwarded: boolean;
}

/**
 * Takes back what addProxyHeaders added, for forward-proxy pass-through to a host outside the mesh (routing decides
 * this only after the headers were added; undoing on this rare path keeps the common one a single pass). What the
 * app sent itself stays, except X-Forwarded-Proto/-Host, which addProxyHeaders had already overwritten. Our Via
 * entry becomes the listener's opaque pseudonym rather than going away: loop detection needs it.
 */
export function undoProxyHeaders(headers: HeaderList, ctx: RequestContext, own: ListenerVia, keep: PassthroughHeaders): void {
  const raw = headers.raw;
  if (!keep.via || !keep.request_id) {
    const via = own.entries[ctx.downstreamProtocol];
    for (let i = raw.length - 2; i >= 0; i -= 2) {
      if (raw[i] !== 'via' || raw[i + 1] !== via) continue;
      // A generated x-request-id comes right after our Via entry; one the app sent sits among its own headers.
      if (!keep.request_id && raw[i + 2] === 'x-request-id' && raw[i + 3] === ctx.requestId) raw.splice(i + 2, 2);
      if (!keep.via) raw[i + 1] = own.pseudonymEntries[ctx.downstreamProtocol];
      break;
    }
  }
  if (!keep.forwarded) {
    const peer = ctx.downstreamAddress;
    const xff = headers.get('x-forwarded-for');
    if (xff === peer) headers.remove('x-forwarded-for');
    else if (xff !== undefined && xff.endsWith(`, ${peer}`)) headers.set('x-forwarded-for', xff.slice(0, xff.length - peer.length - 2));
    headers.remove('x-forwarded-proto');
    headers.remove('x-forwarded-host');
  }
}
