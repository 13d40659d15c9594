// The shared steps of every downstream exchange, whatever the wire: head checks and the loop check, the request with its
// context and proxy headers, refusals (counted, access-logged, rendered once), and the closing record.
import { applyIdentityHeader, transportOf } from '../security/transport.js';
import type { Cancellation } from '../core/cancel.js';
import type { ResponseFlag } from '../core/flags.js';
import { HeaderList } from '../core/headers.js';
import type { ProxyRequest, ProxyResponse, RequestContext, TrailerSlot } from '../core/service.js';
import type { RouteStats } from '../observability/catalogue.js';
import type { ListenerRuntime } from '../runtime/listener-runtime.js';
import type { RuntimeSnapshot } from '../runtime/snapshot.js';
import { addProxyHeaders, isLoop, loopError, newContext, record, type ServerDeps } from './exchange.js';
import { isHeadError, readRequestHead, type RequestHead } from './hygiene.js';
import { renderLocal } from './local-answer.js';

/** What an adapter read off its wire, as the shared steps need it. */
export interface Arrival {
  readonly method: string;
  /** The request target as sent (HTTP/1.1 request-target, HTTP/2 :path), for limits and refusal log lines. */
  readonly target: string;
  readonly rawHeaders: readonly string[];
  readonly httpVersion: string;
  readonly protocol: RequestContext['downstreamProtocol'];
  readonly peer: string;
  /** The socket or HTTP/2 session (fair pool shares key on it). */
  readonly connection: object | undefined;
}

/** A request the sidecar answered itself before dispatch; already counted and access-logged. */
export class Refused {
  constructor(readonly response: ProxyResponse) {}
}

/**
 * Refuses a malformed or looping request: counts it, writes its access-log line and renders the answer (the adapter
 * writes it; HTTP/1.1 then closes the connection, which `close` says in the answer).
 */
export function refuse(deps: ServerDeps, lr: ListenerRuntime, a: Arrival, status: number, message: string, flag: ResponseFlag = 'DPE', close = false): Refused {
  deps.metrics.rejected.get({ listener: lr.name, status: String(status) }).inc();
  const ctx = newContext(lr.name, a.peer, a.protocol, undefined);
  ctx.flag = flag;
  ctx.error = message;
  record(deps, lr.noRouteStats, { method: a.method, authority: '', path: a.target.slice(0, 256), userAgent: undefined }, ctx, status, 0, 0);
  return new Refused(renderLocal({ status, flag, cause: message, withMeaning: true, close }));
}

/** The checks every protocol makes on a head: target length, header hygiene, and the Via loop check. */
export function checkHead(deps: ServerDeps, lr: ListenerRuntime, a: Arrival, close: boolean): RequestHead | Refused {
  const limits = lr.config.limits;
  if (a.target.length > limits.max_uri_length) {
    return refuse(deps, lr, a, 414, `request target of ${a.target.length} bytes is over max_uri_length ${limits.max_uri_length}`, 'DPE', close);
  }
  const head = readRequestHead(a.rawHeaders, a.httpVersion, a.protocol === 'HTTP/2', limits.max_headers_count);
  if (isHeadError(head)) return refuse(deps, lr, a, head.status, head.message, 'DPE', close);
  if (isLoop(head.via, lr.via)) {
    const loop = loopError();
    return refuse(deps, lr, a, loop.status, loop.message, loop.flag, close);
  }
  return head;
}

/**
 * A request's context from its connection: the scheme and verified peer identity its transport (TLS, mTLS) found,
 * and the identity header set from that alone (a client-sent copy is removed first).
 */
export function downstreamContext(
  listener: string,
  peer: string,
  protocol: RequestContext['downstreamProtocol'],
  requestId: string | undefined,
  connection: object | undefined,
  headers: HeaderList,
): RequestContext {
  const transport = connection === undefined ? undefined : transportOf(connection);
  const ctx = newContext(listener, peer, protocol, requestId, transport?.scheme ?? 'http', connection);
  if (transport !== undefined) {
    ctx.peerIdentity = transport.peerIdentity;
    applyIdentityHeader(headers, transport);
  }
  return ctx;
}

/** The request as the pipeline sees it: its context, and the proxy headers added (one pass over the head). */
export function openRequest(
  lr: ListenerRuntime,
  a: Arrival,
  head: RequestHead,
  authority: string,
  path: string,
  body: ProxyRequest['body'],
  trailers: TrailerSlot | undefined,
  cancel: Cancellation,
): ProxyRequest {
  const headers = new HeaderList(head.headers);
  const ctx = downstreamContext(lr.name, a.peer, a.protocol, head.requestId, a.connection, headers);
  if (head.hop) ctx.fromSidecar = lr.fromSidecar(ctx.peerIdentity);
  addProxyHeaders(headers, a.peer, authority, ctx, lr.via, head.requestId !== undefined, head.teTrailers);
  return { method: a.method, authority, path, scheme: ctx.scheme, headers, body, contentLength: head.contentLength, trailers, cancel, context: ctx };
}

/** What the access log names the request by: as it arrived, before filters rewrite it. */
export interface LogRequest {
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly userAgent: string | undefined;
  /** The request's header list, by reference (access_log.request_headers, %REQ(h)%): what the filters left in it. */
  readonly headers?: HeaderList | undefined;
}

export const logRequestOf = (req: ProxyRequest): LogRequest => ({ method: req.method, authority: req.authority, path: req.path, userAgent: req.headers.get('user-agent'), headers: req.headers });

/**
 * The exchange is over (its wire closed): its access-log line and metrics, under the route it was routed to even when
 * it ended before its dispatch did (a client gone mid-request), and its snapshot released.
 */
export function closeExchange(
  deps: ServerDeps,
  lr: ListenerRuntime,
  snapshot: RuntimeSnapshot,
  logReq: LogRequest,
  ctx: RequestContext,
  stats: RouteStats,
  dispatched: boolean,
  status: number,
  bytesIn: number,
  bytesOut: number,
  responseHeaders?: HeaderList,
): void {
  lr.gauges.active.value--;
  record(deps, !dispatched && ctx.route !== '' ? lr.statsFor(ctx.route, ctx.cluster) : stats, logReq, ctx, status, bytesIn, bytesOut, responseHeaders);
  snapshot.leave();
}
