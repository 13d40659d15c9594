// Byte tunnels, downstream side: WebSocket (and any HTTP/1.1 Upgrade) and CONNECT requests checked and put through the
// pipeline, whose terminal (tunnel-terminal.ts) connects; the sockets are spliced here once the upstream switched.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { ProxyError } from '../core/errors.js';
import { HeaderList } from '../core/headers.js';
import { addProxyHeaders, isLoop, localResponse, loopError, record, type ServerDeps } from '../http-server/exchange.js';
import { http1Bytes } from '../http-server/local-answer.js';
import { parseAbsoluteTarget } from '../http-server/hygiene.js';
import { checkHead, downstreamContext, refuse as refuseRequest, Refused, type Arrival } from '../http-server/admission.js';
import { compileHostMatcher, stripPort } from '../router/matchers.js';
import { splitPath } from '../router/route-table.js';
import { normalizeTarget } from '../router/normalize-path.js';
import type { ProxyRequest, RequestContext } from '../core/service.js';
import type { ListenerRuntime } from '../runtime/listener-runtime.js';
import { Cancellation } from '../core/cancel.js';
import { connectService, upgradeService } from './tunnel-terminal.js';

/** Joins two sockets until either side closes; resolves with bytes each way. */
function splice(a: Socket, b: Socket, onClose: (aToB: number, bToA: number) => void): void {
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    a.destroy();
    b.destroy();
    onClose(b.bytesWritten, a.bytesWritten);
  };
  a.pipe(b);
  b.pipe(a);
  a.on('error', close).on('close', close);
  b.on('error', close).on('close', close);
}

function writeLocal(socket: Socket, ctx: RequestContext, err: unknown, expose: boolean): number {
  const res = localResponse(ctx, err, expose);
  res.headers.set('connection', 'close');
  socket.end(http1Bytes(res));
  // Read and drop what the client still sends (a close with unread data is a reset, which can lose the answer).
  socket.resume();
  socket.setTimeout(2000, () => socket.destroy());
  return res.status;
}

/**
 * An HTTP/1.1 Upgrade (WebSocket): routed like a request, sent to the picked endpoint, and turned into a byte tunnel
 * only when the upstream answers 101 for the protocol asked for. Any other answer is relayed as a plain response and
 * the connection closed, so nothing the client sends after it can slip past routing. An upgrade request the sidecar
 * does not tunnel (a body, a route without a single cluster) is served by `servePlain` as the plain request it also is.
 */
export function handleUpgrade(listener: string, deps: ServerDeps, req: IncomingMessage, socket: Socket, head: Buffer, servePlain: () => void): void {
  const snapshot = deps.current();
  const lr = snapshot.listeners.get(listener);
  socket.on('error', () => socket.destroy());
  if (!lr) {
    socket.destroy();
    return;
  }
  // Nothing the client sends after the upgrade request may reach the upstream before it has switched protocols.
  socket.pause();
  const arrival: Arrival = { method: req.method ?? '', target: req.url ?? '/', rawHeaders: req.rawHeaders, httpVersion: req.httpVersion, protocol: req.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1', peer: socket.remoteAddress ?? '', connection: socket };
  const refuse = (status: number, message: string): void => answerRefused(socket, refuseRequest(deps, lr, arrival, status, message, 'DPE', true));
  const target = arrival.target;
  // The same head checks as every request (target length, header hygiene, the Via loop check).
  const parsed = checkHead(deps, lr, arrival, true);
  if (parsed instanceof Refused) return answerRefused(socket, parsed);
  let authority: string;
  let path: string;
  if (target.charCodeAt(0) === 47 /* '/' */) {
    if (parsed.host === undefined) return refuse(400, 'missing Host header');
    authority = parsed.host;
    path = target;
  } else {
    const abs = parseAbsoluteTarget(target);
    if (!abs || abs.scheme !== 'http') return refuse(400, 'invalid request target');
    authority = abs.authority;
    path = abs.path;
  }
  const normal = normalizeTarget(path, lr.config.path_normalization);
  if (typeof normal !== 'string') return refuse(400, normal.refused);
  path = normal;
  if (parsed.chunked || parsed.contentLength > 0) return servePlain();
  const method = req.method ?? 'GET';
  const headers = new HeaderList(parsed.headers);
  const { pathname, query } = splitPath(path);
  const route = lr.route({ method, host: stripPort(authority.toLowerCase()), pathname, query, headers });
  if (!route || !route.cluster) return servePlain();

  const peer = socket.remoteAddress ?? '';
  const ctx = downstreamContext(listener, peer, req.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1', parsed.requestId, socket, headers);
  const logReq = { method, authority, path, userAgent: headers.get('user-agent'), headers };
  const cluster = snapshot.clusters.get(route.cluster)!;
  const stats = route.stats.get(cluster.name) ?? lr.noRouteStats;
  ctx.route = route.name;
  ctx.cluster = cluster.name;
  /** Set once the exchange has its access-log line. */
  let logged = false;
  const log = (status: number, bytesIn: number, bytesOut: number): void => {
    if (logged) return;
    logged = true;
    record(deps, stats, logReq, ctx, status, bytesIn, bytesOut);
  };
  const fail = (err: unknown): void => {
    if (logged) return;
    log(writeLocal(socket, ctx, err, lr.exposeErrorDetails), 0, 0);
  };
  addProxyHeaders(headers, peer, authority, ctx, lr.via, parsed.requestId !== undefined, false);
  const cancel = new Cancellation();
  const onDownstreamClose = (): void => {
    if (logged) return;
    ctx.flag = 'DC';
    ctx.error = 'downstream closed before the upgrade was answered';
    cancel.abort(new ProxyError('DC', ctx.error));
    log(499, 0, 0);
  };
  socket.once('close', onDownstreamClose);
  const preq: ProxyRequest = {
    method,
    authority,
    path,
    scheme: ctx.scheme,
    headers,
    body: null,
    contentLength: -1,
    cancel,
    context: ctx,
    tunnel: {
      downstream: socket,
      asked: parsed.upgrade ?? 'websocket',
      http10: req.httpVersion === '1.0',
      onSwitched(upstream, rest) {
        socket.off('close', onDownstreamClose);
        if (rest.length) socket.write(rest);
        if (head.length) upstream.write(head);
        const tunnels = deps.metrics.tunnels.get({ listener, kind: 'upgrade' });
        tunnels.inc();
        socket.setTimeout(0);
        // The access-log line is written when the tunnel ends, with its duration and bytes each way.
        splice(socket, upstream, (up, down) => {
          tunnels.dec();
          log(101, up, down);
        });
      },
      onRelayed(status, bodyBytes, err) {
        if (err) {
          ctx.flag = err.flag;
          ctx.error = err.message;
        }
        socket.resume(); // drop what the client sends; it will never be parsed
        socket.setTimeout(2000, () => socket.destroy());
        log(status, 0, bodyBytes);
      },
    },
  };
  // Through the route's tunnel pipeline (listener filters, fault, header edits, route filters) to the terminal.
  upgradeService(route, cluster, deps.connector)(preq).then(undefined, fail);
}

/** Writes a refusal (already counted and logged) on the raw socket and closes it, reading and dropping what follows. */
function answerRefused(socket: Socket, refused: Refused): void {
  if (!socket.writable || socket.destroyed) {
    socket.destroy();
    return;
  }
  socket.end(http1Bytes(refused.response));
  socket.resume(); // so the close is a FIN, not a reset that loses the answer
  socket.setTimeout(2000, () => socket.destroy());
}

/** A copy of node's raw header pairs with lower-case names. */
function lowerNames(raw: readonly string[]): string[] {
  const out = raw.slice();
  for (let i = 0; i < out.length; i += 2) out[i] = out[i]!.toLowerCase();
  return out;
}

/** CONNECT host:port (forward mode): a TCP tunnel to an allowed destination. */
export function handleConnect(listener: string, deps: ServerDeps, req: IncomingMessage, socket: Socket, head: Buffer): void {
  const lr: ListenerRuntime | undefined = deps.current().listeners.get(listener);
  socket.on('error', () => socket.destroy());
  if (!lr) {
    socket.destroy();
    return;
  }
  const target = req.url ?? '';
  const headers = new HeaderList(lowerNames(req.rawHeaders));
  const ctx = downstreamContext(listener, socket.remoteAddress ?? '', 'HTTP/1.1', undefined, socket, headers);
  const logReq = { method: 'CONNECT', authority: target, path: '', userAgent: undefined };
  let failed = false;
  const fail = (err: unknown): void => {
    if (failed) return;
    failed = true;
    const status = writeLocal(socket, ctx, err, lr.exposeErrorDetails);
    record(deps, lr.noRouteStats, logReq, ctx, status, 0, 0);
  };
  if (isLoop(headers.get('via'), lr.via)) return fail(loopError());
  if (req.httpVersionMajor !== 1) return fail(new ProxyError('DPE', `HTTP version ${req.httpVersion} is not supported`, { status: 505 }));
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(target);
  const fwd = lr.config.forward;
  if (!m) return fail(new ProxyError('DPE', `CONNECT target must be host:port, got "${target.slice(0, 100)}"`, { status: 400 }));
  const host = m[1]!.replace(/^\[|\]$/g, '');
  const port = Number(m[2]);
  if (lr.config.mode !== 'forward' || !fwd.allow_connect) return fail(new ProxyError('FP', `CONNECT is not enabled on listener ${listener}`, { status: 405 }));
  if (!fwd.connect_ports.includes(port)) return fail(new ProxyError('FP', `CONNECT to port ${port} is not in forward.connect_ports`));
  if (!compileHostMatcher(fwd.allowed_hosts)(host.toLowerCase())) return fail(new ProxyError('FP', `CONNECT to ${host} is not in forward.allowed_hosts`));

  ctx.route = 'connect';
  ctx.endpoint = target;
  ctx.attempts = 1;
  const cancel = new Cancellation();
  socket.once('close', () => cancel.abort(new ProxyError('DC', 'downstream closed before the tunnel was up')));
  const preq: ProxyRequest = {
    method: 'CONNECT',
    authority: target,
    path: '',
    scheme: ctx.scheme,
    headers,
    body: null,
    contentLength: -1,
    cancel,
    context: ctx,
    tunnel: {
      downstream: socket,
      asked: '',
      http10: false,
      onSwitched(upstream) {
        if (head.length) upstream.write(head);
        const tunnels = deps.metrics.tunnels.get({ listener, kind: 'connect' });
        tunnels.inc();
        socket.setTimeout(0);
        splice(socket, upstream, (up, down) => {
          tunnels.dec();
          record(deps, lr.noRouteStats, logReq, ctx, 200, up, down);
        });
      },
      onRelayed() {},
    },
  };
  // Through the listener's filters (authentication, rate limits) to the CONNECT terminal.
  connectService(lr, deps.connector)(preq).then(undefined, fail);
}
