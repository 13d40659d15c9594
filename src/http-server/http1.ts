// HTTP/1.x downstream adapter: node:http request/response <-> ProxyRequest/ProxyResponse.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { discardBody, isWholeBody } from '../core/body.js';
import { Cancellation } from '../core/cancel.js';
import { ProxyError } from '../core/errors.js';
import type { ResponseFlag } from '../core/flags.js';
import { renderLocal } from './local-answer.js';
import { PushedBody } from '../core/pushed-body.js';
import type { ProxyResponse, RequestContext, TrailerSlot } from '../core/service.js';
import type { RouteStats } from '../observability/catalogue.js';
import { splitPath } from '../router/route-table.js';
import { abandoned, dispatch, type ServerDeps } from './exchange.js';
import { normalizeTarget } from '../router/normalize-path.js';
import { checkHead, closeExchange, logRequestOf, openRequest, refuse, Refused, type Arrival } from './admission.js';
import { cleanResponseHeaders, parseAbsoluteTarget, requestTrailers } from './hygiene.js';
import type { ConnectionMarks } from './connection-marks.js';
import { bodyTimeoutError, pump, writeTimeoutCause } from './respond.js';
import { BodyIdleWatch, leftQueued, watchEnd } from './watchdog.js';

export interface Http1Options {
  readonly listener: string;
  /** host:port used for HTTP/1.0 requests without Host. */
  readonly localAuthority: string;
  /** True while the listener drains: responses carry Connection: close. */
  draining(): boolean;
  /** The listener's marks on its connections (shared with its parser-error handler and drain). */
  readonly marks: ConnectionMarks;
}

export function createHttp1Handler(opts: Http1Options, deps: ServerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const name = opts.listener;
  const marks = opts.marks;
  return function onRequest(req, res) {
    const snapshot = deps.current();
    const lr = snapshot.listeners.get(name);
    const peer = req.socket.remoteAddress ?? '';
    if (!lr) {
      reject(marks, res, 503, 'listener is shutting down', 'LR');
      return;
    }
    const limits = lr.config.limits;
    const target = req.url ?? '/';
    const arrival: Arrival = { method: req.method!, target, rawHeaders: req.rawHeaders, httpVersion: req.httpVersion, protocol: req.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1', peer, connection: req.socket };
    const head = checkHead(deps, lr, arrival, true);
    if (head instanceof Refused) return answerRefused(marks, res, head);

    let authority: string;
    let path: string;
    if (target.charCodeAt(0) === 47 /* '/' */) {
      authority = head.host ?? opts.localAuthority;
      path = target;
    } else {
      const abs = parseAbsoluteTarget(target);
      if (!abs) return answerRefused(marks, res, refuse(deps, lr, arrival, 400, target === '*' ? 'OPTIONS * is not proxied' : 'invalid request target', 'DPE', true));
      if (abs.scheme === 'https') return answerRefused(marks, res, refuse(deps, lr, arrival, 400, 'https:// targets must use CONNECT through the proxy', 'DPE', true));
      authority = abs.authority;
      path = abs.path;
    }
    const normal = normalizeTarget(path, lr.config.path_normalization);
    if (typeof normal !== 'string') return answerRefused(marks, res, refuse(deps, lr, arrival, 400, normal.refused, 'DPE', true));
    path = normal;

    const hasBody = head.chunked || head.contentLength > 0;
    if (hasBody && head.expectContinue) req.once('resume', () => sendContinue(res));
    const cancel = new Cancellation();
    const preq = openRequest(lr, arrival, head, authority, path, hasBody ? req : null, head.chunked ? trailersOf(req) : undefined, cancel);
    const ctx = preq.context;
    const logReq = logRequestOf(preq);
    const { pathname, query } = splitPath(path);

    const socket = req.socket; // req.socket is gone by the time 'close' fires for requests with a body
    const bodyBytes = hasBody ? countBodyBytes(req) : NO_BODY;
    marks.active.add(socket);
    snapshot.enter();
    lr.gauges.active.value++;
    let stats: RouteStats = lr.noRouteStats;
    let response: ProxyResponse | undefined;
    let bytesOut = (): number => 0;
    const bodyTimeout = limits.request_body_timeout;
    if (hasBody && bodyTimeout > 0) bodyBytes.watch = new BodyIdleWatch(req, bodyTimeout, () => bodyIdle(res, cancel, ctx, bodyTimeout), () => bytesOut());
    res.on('close', () => { // 'close' fires once; on() spares the once-wrapper per request
      bodyBytes.watch?.stop();
      marks.active.delete(socket);
      let status = response?.status ?? 499;
      const rejected = marks.rejected.get(socket);
      if (rejected && !response) {
        // The parser rejected the rest of this request (e.g. a bad chunk size): it was answered on the socket.
        status = rejected.status;
        ctx.flag = 'DPE';
        ctx.error = rejected.message;
      } else if (!res.writableFinished) {
        status = abandoned(ctx, cancel, response, res.headersSent, marks.drainCut.has(socket));
      }
      closeExchange(deps, lr, snapshot, logReq, ctx, stats, response !== undefined, status, bodyBytes.n, bytesOut(), response?.headers);
    });

    // Defer one tick when a body follows: a framing error later in the same packet then aborts the request before
    // anything is sent upstream (llhttp reports it after emitting the request).
    const run = (): void => {
      if (marks.rejected.has(socket) || (req.destroyed && !req.complete)) {
        cancel.abort(new ProxyError('DPE', marks.rejected.get(socket)?.message ?? 'request aborted before it was forwarded'));
        return;
      }
      dispatch(lr, preq, pathname, query).then((d) => {
        stats = d.stats;
        response = d.response;
        write(marks, res, d.response, ctx, opts.draining(), limits.response_write_timeout, (get) => (bytesOut = get));
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
  marks: ConnectionMarks,
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
    reject(marks, res, 502, `upstream sent a response header Node cannot forward: ${(err as Error).message}`, 'UPE');
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

function reject(marks: ConnectionMarks, res: ServerResponse, status: number, message: string, flag: ResponseFlag): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.shouldKeepAlive = false;
  if (res.socket) marks.answered.add(res.socket);
  const answer = renderLocal({ status, flag, cause: message, withMeaning: true, close: true });
  res.writeHead(status, answer.headers.raw);
  res.end(answer.body);
}

/** Writes a refusal (already counted and logged); the connection closes after it. */
function answerRefused(marks: ConnectionMarks, res: ServerResponse, refused: Refused): void {
  const answer = refused.response;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.shouldKeepAlive = false;
  if (res.socket) marks.answered.add(res.socket);
  res.writeHead(answer.status, answer.headers.raw);
  res.end(answer.body);
}
