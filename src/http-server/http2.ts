// HTTP/2 downstream adapter: node:http2 server streams <-> ProxyRequest/ProxyResponse.
import { PassThrough } from 'node:stream';
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { Cancellation } from '../core/cancel.js';
import { ProxyError } from '../core/errors.js';
import type { ResponseFlag } from '../core/flags.js';
import { answerStyle, finalGrpcStatus, GRPC, renderLocal } from './local-answer.js';
import { HeaderList } from '../core/headers.js';
import { PushedBody } from '../core/pushed-body.js';
import type { ProxyResponse, RequestContext, TrailerSlot } from '../core/service.js';
import type { RouteStats } from '../observability/catalogue.js';
import { splitPath } from '../router/route-table.js';
import type { H2Guard } from './h2-guard.js';
import { abandoned, dispatch, record, type ServerDeps } from './exchange.js';
import { normalizeTarget } from '../router/normalize-path.js';
import { checkHead, closeExchange, logRequestOf, openRequest, refuse, Refused, type Arrival } from './admission.js';
import { cleanResponseHeaders, isValidAuthority, requestTrailers } from './hygiene.js';
import type { ConnectionMarks } from './connection-marks.js';
import { bodyTimeoutError, pump, writeTimeoutCause } from './respond.js';
import { BodyIdleWatch, leftQueued, watchEnd } from './watchdog.js';
import { discardBody, isWholeBody } from '../core/body.js';
import { downstreamResetCode } from '../upstream/h2-reset.js';
import { h2CodeName } from '../core/h2-codes.js';

const { NGHTTP2_INTERNAL_ERROR, NGHTTP2_CANCEL, NGHTTP2_NO_ERROR } = http2.constants;

/** A stream the client resets sooner than this after opening it counts towards the rapid-reset limit. */
const PREMATURE_RESET_MS = 1000;

export function createHttp2Handler(listener: string, deps: ServerDeps, guard: H2Guard, marks: ConnectionMarks): (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void {
  return function onStream(stream, h, _flags, rawHeaders) {
    // Without a listener, a stream's 'error' (its session failed) throws out of its destroy and its 'close' never
    // comes: the request would never finish, never be logged, and pin its snapshot. Its close handler below sees it.
    stream.on('error', ignore);
    const snapshot = deps.current();
    const lr = snapshot.listeners.get(listener);
    const session = stream.session; // gone from the stream by the time it closes
    const peer = session?.socket?.remoteAddress ?? '';
    if (!lr) {
      respondError(stream, 503, 'listener is shutting down', 'LR');
      return;
    }
    const method = h[':method'] ?? 'GET';
    const rawPath = h[':path'];
    const authority = h[':authority'] ?? (typeof h.host === 'string' ? h.host : undefined);
    const arrival: Arrival = { method, target: rawPath ?? '', rawHeaders, httpVersion: '2.0', protocol: 'HTTP/2', peer, connection: session };
    if (method === 'CONNECT' || rawPath === undefined || authority === undefined || !rawPath.startsWith('/') || !isValidAuthority(authority)) {
      return answerRefused(stream, refuse(deps, lr, arrival, 400, method === 'CONNECT' ? 'CONNECT over HTTP/2 is not supported' : 'missing or invalid :path or :authority'));
    }
    const path = normalizeTarget(rawPath, lr.config.path_normalization);
    if (typeof path !== 'string') return answerRefused(stream, refuse(deps, lr, arrival, 400, path.refused));
    const limits = lr.config.limits;
    const listSize = headerListSize(rawHeaders);
    // Checked before the shared head checks only when the target is within its limit, as it always was.
    if (path.length <= limits.max_uri_length && listSize > limits.max_header_bytes) {
      return answerRefused(stream, refuse(deps, lr, arrival, 431, `request header list of ${listSize} bytes is over max_header_bytes ${limits.max_header_bytes}`));
    }
    const head = checkHead(deps, lr, arrival, false);
    if (head instanceof Refused) return answerRefused(stream, head);

    const cancel = new Cancellation();
    if (stream.destroyed || stream.closed) {
      // Node emits 'stream' a tick after the HEADERS frame: the client or a session failure may have ended the
      // stream since. Nobody waits for an answer, so nothing goes upstream; the stream still gets its log line.
      const gone = openRequest(lr, arrival, head, authority, path, null, undefined, cancel);
      abandoned(gone.context, cancel, undefined, false, session !== undefined && marks.drainCut.has(session));
      record(deps, lr.noRouteStats, logRequestOf(gone), gone.context, 499, 0, 0);
      if (session) guard.streamEnded(session, true);
      return;
    }
    const hasBody = !stream.readableEnded && !stream.endAfterHeaders;
    // Only the readable half goes upstream: consumers may destroy a body when done, which would kill our response.
    const body = hasBody ? stream.pipe(new PassThrough({ highWaterMark: 64 * 1024 })) : null;
    const preq = openRequest(lr, arrival, head, authority, path, body, hasBody ? trailersOf(stream) : undefined, cancel);
    const ctx = preq.context;
    const logReq = logRequestOf(preq);
    /** A gRPC call: its final status goes to the access log and the per-method metrics. */
    const grpc = answerStyle(h['content-type']) === 'grpc';
    const { pathname, query } = splitPath(path);

    snapshot.enter();
    lr.gauges.active.value++;
    let stats: RouteStats = lr.noRouteStats;
    let response: ProxyResponse | undefined;
    let bytesOut = (): number => 0;
    let bytesIn = 0;
    const bodyTimeout = limits.request_body_timeout;
    const idle = hasBody && bodyTimeout > 0 ? new BodyIdleWatch(stream, bodyTimeout, () => bodyIdle(stream, cancel, ctx, bodyTimeout), () => bytesOut()) : undefined;
    if (hasBody) stream.on('data', countIn);
    function countIn(chunk: Buffer): void {
      bytesIn += chunk.length;
      if (idle !== undefined) idle.last = performance.now();
    }
    let completed = false;
    /** The sidecar reset the stream itself (a failed response body): not the client's doing. */
    let cutHere = false;
    /** The upstream cancelled mid-body and the client was reset with CANCEL: its call ended CANCELLED. */
    let relayedCancel = false;
    // 'close' comes however the stream ends: END_STREAM both ways, RST_STREAM, GOAWAY, the session destroyed, a socket error.
    stream.once('close', () => {
      idle?.stop();
      countReset(deps, stream);
      let status = response?.status ?? 499;
      if (!completed) status = abandoned(ctx, cancel, response, stream.headersSent, session !== undefined && marks.drainCut.has(session));
      if (grpc) ctx.grpcStatus = relayedCancel ? GRPC.CANCELLED : finalGrpcStatus(response, ctx.flag, status);
      closeExchange(deps, lr, snapshot, logReq, ctx, stats, response !== undefined, status, bytesIn, bytesOut(), response?.headers);
      if (session) guard.streamEnded(session, !completed && !cutHere && performance.now() - ctx.startTime < PREMATURE_RESET_MS);
    });

    dispatch(lr, preq, pathname, query).then((d) => {
      stats = d.stats;
      response = d.response;
      if (stream.destroyed || stream.closed) {
        discardBody(d.response.body);
        return;
      }
      const res = d.response;
      const raw = res.headers.raw;
      cleanResponseHeaders(raw);
      const out: Record<string, string | string[] | number> = res.headers.toObject();
      out[':status'] = res.status;
      const body = res.body;
      const waitForTrailers = body !== null && mayHaveTrailers(res);
      try {
        stream.respond(out, { endStream: body === null, waitForTrailers });
      } catch (err) {
        discardBody(body);
        const message = `upstream response cannot be sent over HTTP/2: ${(err as Error).message}`;
        // Logged as what the client got (a 502 UPE), not as a client that went away.
        ctx.flag = 'UPE';
        ctx.error = message;
        response = { status: 502, headers: res.headers, body: null };
        completed = true;
        respondError(stream, 502, message, 'UPE');
        return;
      }
      if (!body) {
        completed = true;
        return;
      }
      const writeTimeout = limits.response_write_timeout;
      if (isWholeBody(body)) {
        if (waitForTrailers) stream.once('wantTrailers', () => stream.sendTrailers(res.trailers!.toObject()));
        stream.end(body);
        bytesOut = () => body.length;
        completed = true;
        if (writeTimeout > 0 && leftQueued(stream)) watchEnd(stream, writeTimeout, () => writeStalled(stream, ctx, writeTimeout));
        return;
      }
      stream.once('wantTrailers', () => {
        const t = res.trailers;
        // An empty trailer block still ends the stream; close() would not once the request side has ended.
        stream.sendTrailers(t?.size ? t.toObject() : {});
      });
      bytesOut = pump(
        body,
        stream,
        () => {
          completed = true;
          stream.end();
        },
        (err) => {
          cutHere = true;
          // Blame the right side in the log, as HTTP/1.1 does (e.g. DWT for a connection reclaimed from a stalled reader).
          if (err instanceof ProxyError && !ctx.flag) {
            ctx.flag = err.flag;
            ctx.error = err.message;
          }
          if (ctx.flag === 'DWT') {
            if (!stream.destroyed) resetHere(stream, NGHTTP2_CANCEL);
            return;
          }
          const code = downstreamResetCode(err);
          relayedCancel = code === NGHTTP2_CANCEL && waitForTrailers;
          resetResponse(stream, code, waitForTrailers);
        },
        writeTimeout,
        () => writeStalled(stream, ctx, writeTimeout),
      );
    }, (err: unknown) => {
      deps.logger.error({ err }, 'unexpected dispatch failure');
      cutHere = true;
      resetHere(stream, NGHTTP2_INTERNAL_ERROR);
    });
  };
}

const ignore = (): void => {};

/**
 * Cuts a response mid-body with RST_STREAM `code` and never END_STREAM. node's close(code) ends the writable side
 * first: with waitForTrailers our 'wantTrailers' handler would then send the trailers (so it goes first), and without
 * it an empty DATA frame with END_STREAM goes out, so a truncated body would look complete: destroy instead (RST_STREAM
 * INTERNAL_ERROR whatever the code).
 */
function resetResponse(stream: ServerHttp2Stream, code: number, waitedForTrailers: boolean): void {
  if (stream.destroyed) return;
  resetByUs.add(stream);
  if (!waitedForTrailers) {
    stream.destroy(new Error('response body failed'));
    return;
  }
  stream.removeAllListeners('wantTrailers');
  stream.close(code);
}

/** Streams the sidecar itself reset: their RST_STREAM counts as sent, any other as received. */
const resetByUs = new WeakSet<ServerHttp2Stream>();

function resetHere(stream: ServerHttp2Stream, code: number): void {
  resetByUs.add(stream);
  stream.close(code);
}

/** sidecar_h2_resets_total for a downstream stream that ended with a reset (an integer compare for the others). */
function countReset(deps: ServerDeps, stream: ServerHttp2Stream): void {
  const code = stream.rstCode;
  if (code === undefined || code === NGHTTP2_NO_ERROR) return;
  deps.metrics.h2Resets.get({ side: 'downstream', direction: resetByUs.has(stream) ? 'sent' : 'received', code: h2CodeName(code) }).inc();
}

/** response_write_timeout ran out: reset the stream; its close handler cancels the upstream attempt. */
function writeStalled(stream: ServerHttp2Stream, ctx: RequestContext, ms: number): void {
  ctx.flag = 'DWT';
  ctx.error = writeTimeoutCause(ms);
  if (!stream.destroyed) resetHere(stream, NGHTTP2_CANCEL);
}

/**
 * request_body_timeout ran out: before the response head, cancelling the attempt makes the pipeline answer 408 SI,
 * and once that answer is out the request side is reset with NO_ERROR (RFC 9113 8.1: stop sending the rest);
 * after the head, the stream is reset.
 */
function bodyIdle(stream: ServerHttp2Stream, cancel: Cancellation, ctx: RequestContext, ms: number): void {
  const err = bodyTimeoutError(ms);
  cancel.abort(err);
  if (stream.headersSent) {
    ctx.flag = err.flag;
    ctx.error = err.message;
    if (!stream.destroyed) resetHere(stream, NGHTTP2_CANCEL);
  } else {
    stream.once('finish', () => {
      if (!stream.destroyed) resetHere(stream, NGHTTP2_NO_ERROR);
    });
  }
}

/** RFC 9113 6.5.2's header list size: name and value octets plus 32 per field. */
function headerListSize(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i++) n += raw[i]!.length;
  return n + 16 * raw.length;
}

/** A slot the request's trailers land in; HTTP/2 delivers them before the stream's end. */
function trailersOf(stream: ServerHttp2Stream): TrailerSlot {
  const slot: TrailerSlot = { fields: undefined };
  stream.once('trailers', (trailers: IncomingHttpHeaders) => {
    slot.fields = requestTrailers(HeaderList.fromObject(trailers).raw);
  });
  return slot;
}

/** Trailers can only follow when the upstream announced them, speaks gRPC, or streams over HTTP/2. */
function mayHaveTrailers(res: ProxyResponse): boolean {
  if (res.body !== null && isWholeBody(res.body)) return (res.trailers?.size ?? 0) > 0;
  if (!(res.body instanceof PushedBody)) return true;
  return res.headers.has('trailer') || (res.headers.get('content-type') ?? '').startsWith('application/grpc');
}

/** Writes a refusal (already counted and logged) on the stream. */
function answerRefused(stream: ServerHttp2Stream, refused: Refused): void {
  const r = refused.response;
  respondLocal(stream, r.status, r);
}

function respondError(stream: ServerHttp2Stream, status: number, message: string, flag: ResponseFlag): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    resetHere(stream, NGHTTP2_CANCEL);
    return;
  }
  respondLocal(stream, status, renderLocal({ status, flag, cause: message, withMeaning: true }));
}

function respondLocal(stream: ServerHttp2Stream, status: number, answer: ProxyResponse): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    resetHere(stream, NGHTTP2_CANCEL);
    return;
  }
  const out: Record<string, string | string[] | number> = answer.headers.toObject();
  out[':status'] = status;
  stream.respond(out);
  stream.end(answer.body);
}
