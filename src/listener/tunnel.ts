// Byte tunnels: WebSocket (and any HTTP/1.1 Upgrade) to a routed endpoint, and CONNECT to an allowed host.
import type { IncomingMessage } from 'node:http';
import net, { type Socket } from 'node:net';
import { ProxyError } from '../core/errors.js';
import { HeaderList } from '../core/headers.js';
import { genericCause, localResponse, newContext, record, statusText, type ServerDeps } from '../http-server/exchange.js';
import { isHeadError, readRequestHead } from '../http-server/hygiene.js';
import { rejectOnSocket } from '../http-server/respond.js';
import { compileHostMatcher, stripPort } from '../router/matchers.js';
import { splitPath } from '../router/route-table.js';
import type { RequestContext } from '../core/service.js';
import type { ListenerRuntime } from '../runtime/listener-runtime.js';
import { Cancellation } from '../core/cancel.js';
import { splitAddress } from '../upstream/upstream.js';

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

function writeLocal(socket: Socket, ctx: RequestContext, err: ProxyError, expose: boolean): number {
  const res = localResponse(ctx, err, expose);
  const body = `${err.status}: ${expose ? ctx.error : genericCause(err.flag)}\n`;
  let head = `HTTP/1.1 ${res.status} ${statusText(res.status)}\r\nconnection: close\r\n`;
  const raw = res.headers.raw;
  for (let i = 0; i < raw.length; i += 2) if (raw[i] !== 'content-length') head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  socket.end(`${head}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  return res.status;
}

/** An HTTP/1.1 Upgrade (WebSocket): route it like a request, then tunnel bytes to the picked endpoint. */
export function handleUpgrade(listener: string, deps: ServerDeps, req: IncomingMessage, socket: Socket, head: Buffer): void {
  const snapshot = deps.current();
  const lr = snapshot.listeners.get(listener);
  socket.on('error', () => socket.destroy());
  if (!lr) {
    socket.destroy();
    return;
  }
  const parsed = readRequestHead(req.rawHeaders, req.httpVersion, false, lr.config.limits.max_headers_count);
  if (isHeadError(parsed)) {
    deps.metrics.rejected.get({ listener, status: String(parsed.status) }).inc();
    return rejectOnSocket(socket, parsed.status, parsed.message);
  }
  const path = req.url ?? '/';
  const authority = parsed.host ?? '';
  const peer = socket.remoteAddress ?? '';
  const ctx = newContext(listener, peer, 'HTTP/1.1', parsed.requestId);
  const headers = new HeaderList(parsed.headers);
  const { pathname, query } = splitPath(path);
  const route = lr.route({ method: req.method ?? 'GET', host: stripPort(authority.toLowerCase()), pathname, query, headers });
  const logReq = { method: req.method ?? 'GET', authority, path, userAgent: headers.get('user-agent') };
  const fail = (err: ProxyError): void => {
    const status = writeLocal(socket, ctx, err, lr.exposeErrorDetails);
    record(deps, lr.noRouteStats, logReq, ctx, status, 0, 0);
  };
  if (!route || !route.cluster) return fail(new ProxyError('NR', `no route on listener ${listener} with a single cluster matches upgrade to ${authority}${pathname}`));
  const cluster = snapshot.clusters.get(route.cluster)!;
  ctx.route = route.name;
  ctx.cluster = cluster.name;
  const ep = cluster.pick({ method: 'GET', authority, path, scheme: 'http', headers, body: null, contentLength: -1, cancel: new Cancellation(), context: ctx });
  if (!ep) return fail(new ProxyError('UH', `no healthy endpoint in cluster ${cluster.name}`));
  ctx.endpoint = ep.address;
  ctx.attempts = 1;

  const xff = headers.get('x-forwarded-for');
  headers.set('x-forwarded-for', xff === undefined ? peer : `${xff}, ${peer}`);
  headers.set('x-forwarded-proto', 'http');
  if (parsed.requestId === undefined) headers.add('x-request-id', ctx.requestId);
  let out = `${req.method} ${path} HTTP/1.1\r\nhost: ${authority}\r\nconnection: upgrade\r\nupgrade: ${parsed.upgrade ?? 'websocket'}\r\n`;
  const raw = headers.raw;
  for (let i = 0; i < raw.length; i += 2) out += `${raw[i]}: ${raw[i + 1]}\r\n`;
  out += '\r\n';

  const { host, port } = splitAddress(ep.address);
  const upstream = net.connect({ host, port, noDelay: true });
  const timer = setTimeout(() => {
    upstream.destroy();
    fail(new ProxyError('UF', `upstream connect timeout to ${ep.address} after ${cluster.config.connect_timeout}ms`, { status: 504, endpoint: ep.address }));
  }, cluster.config.connect_timeout);
  upstream.once('error', (err: NodeJS.ErrnoException) => {
    clearTimeout(timer);
    if (!upstream.readyState || upstream.connecting) fail(new ProxyError('UF', `upstream connect ${err.code === 'ECONNREFUSED' ? 'refused by' : 'failed to'} ${ep.address}`, { endpoint: ep.address }));
  });
  upstream.once('connect', () => {
    clearTimeout(timer);
    upstream.write(out);
    if (head.length) upstream.write(head);
    const tunnels = deps.metrics.tunnels.get({ listener, kind: 'upgrade' });
    tunnels.inc();
    socket.setTimeout(0);
    splice(socket, upstream, (up, down) => {
      tunnels.dec();
      record(deps, route.stats.get(cluster.name) ?? lr.noRouteStats, logReq, ctx, 101, up, down);
    });
  });
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
  const ctx = newContext(listener, socket.remoteAddress ?? '', 'HTTP/1.1', undefined);
  const logReq = { method: 'CONNECT', authority: target, path: '', userAgent: undefined };
  const fail = (err: ProxyError): void => {
    const status = writeLocal(socket, ctx, err, lr.exposeErrorDetails);
    record(deps, lr.noRouteStats, logReq, ctx, status, 0, 0);
  };
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
  const upstream = net.connect({ host, port, noDelay: true });
  const timer = setTimeout(() => {
    upstream.destroy();
    fail(new ProxyError('UF', `connect timeout to ${target} after ${fwd.connect_timeout}ms`, { status: 504, endpoint: target }));
  }, fwd.connect_timeout);
  upstream.once('error', (err: NodeJS.ErrnoException) => {
    clearTimeout(timer);
    if (upstream.connecting || !upstream.remoteAddress) fail(new ProxyError('UF', `connect to ${target} failed: ${err.code ?? err.message}`, { endpoint: target }));
  });
  upstream.once('connect', () => {
    clearTimeout(timer);
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length) upstream.write(head);
    const tunnels = deps.metrics.tunnels.get({ listener, kind: 'connect' });
    tunnels.inc();
    socket.setTimeout(0);
    splice(socket, upstream, (up, down) => {
      tunnels.dec();
      record(deps, lr.noRouteStats, logReq, ctx, 200, up, down);
    });
  });
}
