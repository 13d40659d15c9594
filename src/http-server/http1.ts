// HTTP/1.x downstream adapter: node:http request/response <-> ProxyRequest/ProxyResponse.
import { applyIdentityHeader, transportOf } from '../security/transport.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { discardBody, isWholeBody } from '../core/body.js';
import { Cancellation } from '../core/cancel.js';
import { ProxyError } from '../core/errors.js';
import { ERROR_HEADER, FLAG_HEADER, type ResponseFlag } from '../core/flags.js';
import { HeaderList } from '../core/headers.js';
import { PushedBody } from '../core/pushed-body.js';
import type { ProxyRequest, ProxyResponse, RequestContext, TrailerSlot } from '../core/service.js';
import type { RouteStats } from '../observability/catalogue.js';
import { splitPath } from '../router/route-table.js';
import type { ListenerRuntime } from '../runtime/listener-runtime.js';
import { abandoned, addProxyHeaders, dispatch, isLoop, loopError, newContext, record, type ServerDeps } from './exchange.js';
import { cleanResponseHeaders, isHeadError, parseAbsoluteTarget, readRequestHead, requestTrailers } from './hygiene.js';
import { activeRequests, answeredSockets, bodyTimeoutError, drainCut, pump, rejectedSockets, writeTimeoutCause } from './respond.js';
import { BodyIdleWatch, leftQueued, watchEnd } from './watchdog.js';

export interface Http1Options {
  readonly listener: string;
  /** host:port used for HTTP/1.0 requests without Host. */
  readonly localAuthority: string;
  /** True while the listener drains: responses carry Connection: close. */
  draining(): boolean;
}

export function createHttp1Handler(opts: Http1Options, deps: ServerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const name = opts.listener;
  return function onRequest(req, res) {
    const snapshot = deps.current();
    const lr = snapshot.listeners.get(name);
    const peer = req.socket.remoteAddress ?? '';
    if (!lr) {
      reject(res, 503, 'listener is shutting down', 'LR');
      return;
    }
    const limits = lr.config.limits;
    const target = req.url ?? '/';
    if (target.length > limits.max_uri_length) {
      rejectAndLog(deps, lr, req, res, 414, `request target of ${target.length} bytes is over max_uri_length ${limits.max_uri_length}`);
      return;
    }
    const head = readRequestHead(req.rawHeaders, req.httpVersion, false, limits.max_headers_count);
    if (isHeadError(head)) {
      rejectAndLog(deps, lr, req, res, head.status, head.message);
      return;
    }
    if (isLoop(head.via, name)) {
      const loop = loopError();
      rejectAndLog(deps, lr, req, res, loop.status, loop.message, loop.flag);
      return;
    }

    let authority: string;
    let path: string;
    if (target.charCodeAt(0) === 47 /* '/' */) {
      authority = head.host ?? opts.localAuthority;
      path = target;
    } else {
      const abs = parseAbsoluteTarget(target);
      if (!abs) {
        rejectAndLog(deps, lr, req, res, 400, target === '*' ? 'OPTIONS * is not proxied' : 'invalid request target');
        return;
      }
      if (abs.scheme === 'https') {
        rejectAndLog(deps, lr, req, res, 400, 'https:// targets must use CONNECT through the proxy');
        return;
      }
      authority = abs.authority;
      path = abs.path;
    }

    const headers = new HeaderList(head.headers);
    const transport = transportOf(req.socket);
    const ctx = newContext(name, peer, req.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1', head.requestId, transport?.scheme ?? 'http', req.socket);
    if (transport) {
      ctx.peerIdentity = transport.peerIdentity;
      applyIdentityHeader(headers, transport);
    }
    addProxyHeaders(headers, peer, authority, ctx, head.requestId !== undefined, head.teTrailers);

    const hasBody = head.chunked || head.contentLength > 0;
    if (hasBody && head.expectContinue) req.once('resume', () => sendContinue(res));
    const cancel = new Cancellation();
    const preq: ProxyRequest = {
      method: req.method!,
      authority,
      path,
      scheme: ctx.scheme,
      headers,
      body: hasBody ? req : null,
      contentLength: head.contentLength,
      trailers: head.chunked ? trailersOf(req) : undefined,
      cancel,
      context: ctx,
    };
    const logReq = { method: preq.method, authority, path, userAgent: headers.get('user-agent') };
    const { pathname, query } = splitPath(path);

    const socket = req.socket; // req.socket is gone by the time 'close' fires for requests with a body
    const bodyBytes = hasBody ? countBodyBytes(req) : NO_BODY;
    activeRequests.add(socket);
    snapshot.enter();
    const gauges = lr.gauges;
    gauges.active.value++;
    let stats: RouteStats = lr.noRouteStats;
    let response: ProxyResponse | undefined;
    let bytesOut = (): number => 0;
    const bodyTimeout = limits.request_body_timeout;
    if (hasBody && bodyTimeout > 0) bodyBytes.watch = new BodyIdleWatch(req, bodyTimeout, () => bodyIdle(res, cancel, ctx, bodyTimeout), () => bytesOut());
    res.on('close', () => { // 'close' fires once; on() spares the once-wrapper per request
      bodyBytes.watch?.stop();
      gauges.active.value--;
      activeRequests.delete(socket);
      let status = response?.status ?? 499;
      const rejected = rejectedSockets.get(socket);
      if (rejected && !response) {
        // The parser rejected the rest of this request (e.g. a bad chunk size): it was answered on the socket.
        status = rejected.status;
        ctx.flag = 'DPE';
        ctx.error = rejected.message;
      } else if (!res.writableFinished) {
        status = abandoned(ctx, cancel, response, res.headersSent, drainCut.has(socket));
      }
      // A request that ends before its dispatch (client gone) still counts under the route it was routed to.
      if (response === undefined && ctx.route !== '') stats = lr.statsFor(ctx.route, ctx.cluster);
      record(deps, stats, logReq, ctx, status, bodyBytes.n, bytesOut());
      snapshot.leave();
    });

    // Defer one tick when a body follows: a framing error later in the same packet then aborts the request before
    // anything is sent upstream (llhttp reports it after emitting the request).
    const run = (): void => {
      if (rejectedSockets.has(socket) || (req.destroyed && !req.complete)) {
        cancel.abort(new ProxyError('DPE', rejectedSockets.get(socket)?.message ?? 'request aborted before it was forwarded'));
        return;
      }
      dispatch(lr, preq, pathname, query).then((d) => {
        stats = d.stats;
        response = d.response;
        write(res, d.response, ctx, opts.draining(), limits.response_write_timeout, (get) => (bytesOut = get));
      }, (err: unknown) => {
        deps.logger.error({ err }, 'unexpected dispatch failure');
        res.destroy();
      });
    };
    if (hasBody) process.nextTick(run);
    else run();
  };
}

function write(
  res: ServerResponse,
  response: ProxyResponse,
  ctx: RequestContext,
  draining: boolean,
  writeTimeout: number,
  setBytes: (get: () => number) => void,
): void {
  if (res.destroyed) {
    discardBody(response.body);
    return;
  }
  const raw = response.headers.raw;
  cleanResponseHeaders(raw);
  if (draining) res.shouldKeepAlive = false;
  try {
    res.writeHead(response.status, raw);
  } catch (err) {
    discardBody(response.body);
    reject(res, 502, `upstream sent a response header Node cannot forward: ${(err as Error).message}`, 'UPE');
    return;
  }
  const body = response.body;
  if (!body) {
    res.end();
    return;
  }
  // A body already complete (small responses arrive whole) goes out with the head in one write.
  if (isWholeBody(body)) {
    endWhole(res, response, body, setBytes);
    if (writeTimeout > 0 && leftQueued(res)) watchEnd(res, writeTimeout, () => writeStalled(res, ctx, writeTimeout));
    return;
  }
  const whole = body instanceof PushedBody ? body.takeWhole() : undefined;
  if (whole !== undefined) {
    endWhole(res, response, whole, setBytes);
    if (writeTimeout > 0 && leftQueued(res)) watchEnd(res, writeTimeout, () => writeStalled(res, ctx, writeTimeout));
    return;
  }
  // Nothing of the body is here yet (server-sent events, long polls, a slow upstream): the head goes out now, not
  // with the first body byte. With data already buffered, head and data leave in one write.
  if (body.readableLength === 0) res.flushHeaders();
  setBytes(
    pump(
      body,
      res,
      () => {
        if (response.trailers?.size) res.addTrailers(pairs(response.trailers.raw));
        res.end();
      },
      // A reset mid-response must not look like a complete body: drop the connection, and blame the right side.
      (err) => {
        const e = err instanceof ProxyError ? err : new ProxyError('UR', `upstream stream failed mid-response: ${err.message}`);
        ctx.flag = e.flag;
        ctx.error = e.message;
        res.destroy();
      },
      writeTimeout,
      () => writeStalled(res, ctx, writeTimeout),
    ),
  );
}

/** response_write_timeout ran out: cut the downstream; its close handler cancels the upstream attempt. */
function writeStalled(res: ServerResponse, ctx: RequestContext, ms: number): void {
  ctx.flag = 'DWT';
  ctx.error = writeTimeoutCause(ms);
  res.destroy();
}

/**
 * request_body_timeout ran out: before the response head, cancelling the attempt makes the pipeline answer 408 SI
 * (and the connection closes, the rest of the body unread); after it, the response is cut short.
 */
function bodyIdle(res: ServerResponse, cancel: Cancellation, ctx: RequestContext, ms: number): void {
  const err = bodyTimeoutError(ms);
  res.shouldKeepAlive = false;
  cancel.abort(err);
  if (res.headersSent) {
    ctx.flag = err.flag;
    ctx.error = err.message;
    res.destroy();
  }
}

function endWhole(res: ServerResponse, response: ProxyResponse, whole: Buffer, setBytes: (get: () => number) => void): void {
  if (response.trailers?.size) res.addTrailers(pairs(response.trailers.raw));
  res.end(whole);
  setBytes(() => whole.length);
}

/**
 * 100 Continue, from the response that owns the socket only. A pipelined request's response waits in node:http's
 * queue, which buffers its writes and would put its head in front of a buffered 100 (or the 100 inside an earlier
 * response): a queued response sends it when it gets the socket, and not at all once its own head is written.
 */
function sendContinue(res: ServerResponse): void {
  if (res.socket) res.writeContinue();
  else res.once('socket', () => {
    if (!res.headersSent) res.writeContinue();
  });
}

const NO_BODY: BodyCount = { n: 0, watch: undefined };

interface BodyCount {
  n: number;
  /** The request_body_timeout watch, told when bytes arrive. */
  watch: BodyIdleWatch | undefined;
}

/**
 * Counts the request body's bytes as node:http's parser hands them over (it pushes each chunk into the message).
 * Socket byte counts cannot tell this request's body from the head and from the next pipelined request.
 */
function countBodyBytes(req: IncomingMessage): BodyCount {
  const count: BodyCount = { n: 0, watch: undefined };
  const push = req.push;
  req.push = function (chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk !== null && chunk !== undefined) {
      count.n += (chunk as Buffer).length;
      const watch = count.watch;
      if (watch !== undefined) watch.last = performance.now();
    }
    return push.call(this, chunk, encoding);
  };
  return count;
}

/** A slot the chunked body's trailers land in when it ends (node:http has parsed them by its 'end'). */
function trailersOf(req: IncomingMessage): TrailerSlot {
  const slot: TrailerSlot = { fields: undefined };
  req.once('end', () => {
    if (req.rawTrailers.length > 0) slot.fields = requestTrailers(req.rawTrailers);
  });
  return slot;
}

function pairs(raw: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

function reject(res: ServerResponse, status: number, message: string, flag: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${status}: ${message}\n`;
  res.shouldKeepAlive = false;
  if (res.socket) answeredSockets.add(res.socket);
  res.writeHead(status, [
    'content-type', 'text/plain; charset=utf-8',
    'content-length', String(Buffer.byteLength(body)),
    'connection', 'close',
    FLAG_HEADER, flag,
    ERROR_HEADER, message.replace(/[^\x20-\x7e]/g, '?'),
  ]);
  res.end(body);
}

/** Answers a malformed request, closes the connection, and records it. */
function rejectAndLog(deps: ServerDeps, lr: ListenerRuntime, req: IncomingMessage, res: ServerResponse, status: number, message: string, flag: ResponseFlag = 'DPE'): void {
  deps.metrics.rejected.get({ listener: lr.name, status: String(status) }).inc();
  const ctx = newContext(lr.name, req.socket.remoteAddress ?? '', req.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1', undefined);
  ctx.flag = flag;
  ctx.error = message;
  reject(res, status, message, flag);
  record(deps, lr.noRouteStats, { method: req.method ?? '', authority: '', path: (req.url ?? '').slice(0, 256), userAgent: undefined }, ctx, status, 0, 0);
}
