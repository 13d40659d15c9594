// One upstream HTTP/1.1 connection: a socket and a response parser, carrying one exchange at a time (no pipelining).
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Readable } from 'node:stream';
import type { TrailerSlot } from '../../core/service.js';
import { systemClock } from '../../core/clock.js';
import { ProxyError } from '../../core/errors.js';
import { forwardDeadline } from '../../policies/timeout/deadline.js';
import { upstreamIdentityOf } from '../../security/transport.js';
import { readyEvent, type ConnectTarget, type Connector } from '../connector.js';
import { afterHead, upstreamFailure } from '../errors.js';
import type { Exchange } from './exchange.js';
import { announcedKeepAlive, CHUNK_END, chunkHeader, framingFor, LAST_CHUNK, lastChunk, requestHead } from './head.js';
import { isParseError, ON_BODY, ON_HEADERS, ON_HEADERS_COMPLETE, ON_MESSAGE_BEGIN, ON_MESSAGE_COMPLETE, responseParser, type NativeParser } from './parser.js';

/** Response heads larger than this are a protocol error (Envoy's default for response headers is 60 KiB). */
const MAX_RESPONSE_HEAD = 64 * 1024;

/** What a connection needs from the pool that owns it. */
export interface ConnectionOwner {
  readonly address: string;
  readonly connectTimeout: number;
  /** The exchange is done; the connection may carry another one when `reusable`. */
  release(conn: Http1Connection, reusable: boolean): void;
  /** A reused connection closed under a bodiless request before any response byte: true when the owner resends it. */
  replayStale(ex: Exchange): boolean;
  /** The socket has closed. */
  closed(conn: Http1Connection): void;
}

export interface ConnectionOptions {
  readonly target: ConnectTarget;
  readonly connector: Connector;
  readonly connectTimeout: number;
  /** Longest silence while a response body is arriving (0: none). */
  readonly streamIdleTimeout: number;
}

export class Http1Connection {
  readonly socket: Socket;
  /** The exchange in progress, if any. */
  exchange: Exchange | undefined;
  /** Exchanges started on this connection. */
  uses = 0;
  /** While idle in the pool: clock time after which it must not be reused. */
  expiresAt = 0;
  /** The idle time the last response announced in Keep-Alive (ms), if any. */
  announcedKeepAlive: number | undefined;
  /** The downstream connection of the exchange this connection carries (the pool's fair-share accounting). */
  downstream: object | undefined = undefined;
  /** Since when the reader of the current response has left the socket paused (clock ms); 0 while it reads. */
  pausedAt = 0;
  readonly #owner: ConnectionOwner;
  readonly #parser: NativeParser;
  readonly #streamIdleTimeout: number;
  #connected = false;
  #closed = false;
  /** Whether the current response leaves the connection open (HTTP/1.1 without Connection: close). */
  #keepAlive = false;
  #messageDone = false;
  /**
   * Bytes followed the end of the response (in the same packet): the upstream sent more than one response to one
   * request. The exchange still completes, but the connection is never reused: its parser is inside a message that
   * belongs to no request (response smuggling from upstream).
   */
  #overrun = false;
  /** The message being parsed is a 1xx interim response: its end is not the exchange's end. */
  #interim = false;
  /** Header pairs the parser flushed before the head completed, or trailers after the body. */
  #pairs: string[] | undefined;
  /** Response bytes read since the current exchange started (none: the keep-alive race is possible). */
  #received = 0;
  #writer: BodyWriter | undefined;
  /** Why the connection is going away; reported to the exchange when the socket closes. */
  #error: Error | undefined;

  constructor(owner: ConnectionOwner, opts: ConnectionOptions) {
    this.#owner = owner;
    this.#streamIdleTimeout = opts.streamIdleTimeout;
    const parser = (this.#parser = responseParser(MAX_RESPONSE_HEAD));
    parser[ON_MESSAGE_BEGIN] = () => {
      if (this.#messageDone) this.#overrun = true;
    };
    parser[ON_HEADERS] = (pairs) => {
      (this.#pairs ??= []).push(...pairs);
    };
    parser[ON_HEADERS_COMPLETE] = (_maj, _min, headers, _method, _url, status, _message, _upgrade, keepAlive) =>
      this.#onHead(headers, status, keepAlive);
    parser[ON_BODY] = (chunk) => {
      const ex = this.exchange;
      if (ex !== undefined && !this.#overrun && !ex.onBody(chunk)) {
        this.socket.pause();
        if (this.pausedAt === 0) this.pausedAt = systemClock.now();
      }
    };
    parser[ON_MESSAGE_COMPLETE] = () => this.#onMessageComplete();

    // The connector owns the connect timeout: a connect that hangs destroys the socket with a typed UF 504.
    const socket = (this.socket = opts.connector(opts.target, { timeout: opts.connectTimeout }));
    socket.on(readyEvent(socket), () => {
      this.#connected = true;
      socket.setTimeout(this.#streamIdleTimeout);
    });
    socket.on('data', (data: Buffer) => this.#onData(data));
    socket.on('end', () => {
      // The upstream finished sending: this completes a body delimited by the close, or exposes a truncated one.
      const r = this.#parser.finish();
      if (isParseError(r)) this.#error ??= closedBeforeEnd();
      else this.#afterPacket();
    });
    socket.on('timeout', () => this.#onTimeout());
    socket.on('drain', () => this.#writer?.onDrain());
    socket.on('error', (err) => {
      this.#error ??= err;
    });
    socket.on('close', () => this.#onClose());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Writes the request of `ex` and starts streaming its body. */
  start(ex: Exchange): void {
    this.exchange = ex;
    ex.conn = this;
    this.uses++;
    this.#received = 0;
    this.#keepAlive = false;
    this.announcedKeepAlive = undefined;
    const req = ex.req;
    const raw = req.headers.raw;
    // The budget left, measured as the attempt goes out (after any wait for a connection).
    forwardDeadline(req.headers, req.context.deadline, systemClock.now());
    const body = req.body;
    let head: string;
    try {
      head = requestHead(req.method, req.path, req.authority, raw, framingFor(req.method, body !== null, req.contentLength, raw));
    } catch (err) {
      // Nothing was written: the connection stays good for the next request.
      this.exchange = ex.conn = undefined;
      this.uses--;
      const invalid = new ProxyError('DPE', `request cannot be forwarded: ${(err as Error).message}`, { status: 400, endpoint: this.#owner.address });
      ex.fail(() => invalid, () => invalid);
      this.#owner.release(this, true);
      return;
    }
    this.socket.write(head, 'latin1');
    if (body === null) return;
    const writer = (this.#writer = new BodyWriter(this, body, req.contentLength, req.trailers));
    // Not one byte of the body is taken before the connection is up: a connect failure leaves it whole for a retry.
    if (this.#connected) writer.start();
    else this.socket.once(readyEvent(this.socket), () => this.#writer === writer && writer.start());
  }

  /** Fails the exchange `ex` (when it is still the current one) and closes the connection. */
  abort(ex: Exchange, reason: Error): void {
    if (this.exchange === ex) this.fail(reason);
  }

  /**
   * Closes the connection; the current exchange, if any, fails with `reason` once the socket has closed. With an
   * exchange on the wire the close is a reset (RST), so the upstream cannot take a cut-short request for a whole one.
   */
  fail(reason: Error): void {
    this.#error ??= reason;
    // RST tells the upstream the exchange was abandoned; only a TCP handle can send it (a TLS socket's
    // resetAndDestroy throws ERR_INVALID_HANDLE_TYPE and leaves the connection open), so TLS just closes.
    if (this.exchange !== undefined && this.#connected && !this.socket.destroyed && !(this.socket instanceof TLSSocket)) this.socket.resetAndDestroy();
    else this.socket.destroy();
  }

  resume(): void {
    this.pausedAt = 0;
    this.socket.resume();
  }

  /** The current exchange's upload rate in bytes/s (see BodyWriter.clientRate); undefined when there is none to judge. */
  uploadRate(now: number, minAgeMs: number): number | undefined {
    return this.exchange === undefined ? undefined : this.#writer?.clientRate(now, minAgeMs);
  }

  destroy(): void {
    this.socket.destroy();
  }

  #onHead(headers: string[] | undefined, status: number, keepAlive: boolean): number {
    const ex = this.exchange;
    const raw = headers ?? this.#pairs ?? [];
    this.#pairs = undefined;
    if (this.#overrun) return 0; // a second response to one request: parsed only to be dropped with the connection
    if (ex === undefined) {
      this.fail(this.#invalid('a response with no request outstanding'));
      return 0;
    }
    if (status < 100 || status > 599) {
      this.fail(this.#invalid(`status ${status} is outside 100-599`));
      return 0;
    }
    if (status < 200) {
      // Interim responses (100 Continue, 103 Early Hints) are dropped: the sidecar answers Expect itself. An upgrade
      // was never asked for (Upgrade is hop-by-hop), so 101 is a protocol error.
      if (status === 101) this.fail(this.#invalid('101 Switching Protocols to a request that asked for no upgrade'));
      this.#interim = true;
      return 0;
    }
    this.#keepAlive = keepAlive;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      raw[i] = name;
      if (name === 'keep-alive') this.announcedKeepAlive = announcedKeepAlive(raw[i + 1]!);
      else if (name === 'transfer-encoding' && !isChunked(raw[i + 1]!)) {
        // llhttp decodes chunked only; passing a body in any other coding on would hand the client bytes nothing describes.
        this.fail(this.#invalid(`unsupported Transfer-Encoding "${raw[i + 1]}"`));
        return 0;
      } else if (name === 'content-length' && status === 204) {
        // RFC 9110 8.6: a 204 carries no Content-Length.
        raw.splice(i, 2);
        i -= 2;
      }
    }
    // Read here, not in start(): a TLS connection may still have been handshaking then.
    const identity = upstreamIdentityOf(this.socket);
    if (identity !== undefined) ex.req.context.upstreamIdentity = identity;
    ex.onHead(status, raw);
    // A response to HEAD has no body, whatever its Content-Length says.
    return ex.req.method === 'HEAD' ? 1 : 0;
  }

  #onMessageComplete(): void {
    if (this.#overrun) return;
    if (this.#interim) {
      this.#interim = false;
      return;
    }
    const ex = this.exchange;
    if (ex === undefined || !ex.hasHead) return;
    const trailers = this.#pairs;
    this.#pairs = undefined;
    this.#messageDone = true;
    ex.onComplete(trailers);
  }

  #onData(data: Buffer): void {
    if (this.exchange === undefined) {
      // Bytes on an idle connection answer no request: the connection cannot be trusted for the next one.
      this.destroy();
      return;
    }
    this.#received += data.length;
    const r = this.#parser.execute(data);
    if (isParseError(r)) {
      this.fail(this.#invalid(r.reason || r.code));
      return;
    }
    this.#afterPacket();
  }

  /** The parser is done with the bytes at hand: finish the exchange, or hand over a response that is still arriving. */
  #afterPacket(): void {
    const ex = this.exchange;
    if (ex === undefined || this.#error !== undefined) return;
    if (!this.#messageDone) {
      ex.afterPacket();
      return;
    }
    this.#messageDone = false;
    this.exchange = ex.conn = undefined;
    let reusable = this.#keepAlive && !this.#closed && !this.#overrun;
    const writer = this.#writer;
    if (writer !== undefined) {
      this.#writer = undefined;
      // The upstream answered before taking the whole request body: the rest cannot be sent, nor the connection reused.
      if (!writer.done) {
        writer.detach();
        reusable = false;
      }
    }
    // A paused socket (a slow reader of this body) has nothing more of this response to deliver.
    this.pausedAt = 0;
    if (this.socket.isPaused()) this.socket.resume();
    this.#owner.release(this, reusable);
  }

  #onTimeout(): void {
    const address = this.#owner.address;
    if (!this.#connected) return; // the connector's timer governs the connect
    // Idle pooled connections and the wait for a response head are governed by the pool and the route timeout; a
    // reader that paused the socket is not the upstream's silence.
    const ex = this.exchange;
    if (ex === undefined || !ex.hasHead || this.socket.isPaused()) return;
    this.fail(
      new ProxyError('UT', `upstream ${address} stream idle timeout (${this.#streamIdleTimeout}ms without body bytes)`, {
        endpoint: address,
        outcome: 'response-started',
        code: 'timeout',
      }),
    );
  }

  #onClose(): void {
    this.#closed = true;
    this.#parser.close();
    this.#writer?.detach();
    this.#writer = undefined;
    const ex = this.exchange;
    if (ex !== undefined) {
      this.exchange = ex.conn = undefined;
      const err = this.#error ?? closedBeforeEnd();
      const stale = ex.replayable && this.uses > 1 && this.#received === 0 && isCloseOrReset(err) && !ex.cancel.aborted;
      if (!stale || !this.#owner.replayStale(ex)) {
        const address = this.#owner.address;
        ex.fail(
          () => upstreamFailure(err, address, this.#owner.connectTimeout),
          () =>
            err instanceof ProxyError
              ? afterHead(err)
              : new ProxyError('UR', `upstream ${address} reset mid-response: ${err.message}`, { endpoint: address, cause: err, outcome: 'response-started', code: 'connection-closed' }),
        );
      }
    }
    this.#owner.closed(this);
  }

  #invalid(what: string): ProxyError {
    const address = this.#owner.address;
    return new ProxyError('UPE', `upstream ${address} sent an invalid response: ${what}`, { endpoint: address });
  }
}

const ignore = (): void => {};

const isChunked = (coding: string): boolean => coding.length === 7 ? coding.toLowerCase() === 'chunked' : coding.trim().toLowerCase() === 'chunked';

const closedBeforeEnd = (): Error => Object.assign(new Error('other side closed'), { code: 'UPSTREAM_CLOSED' });

/** The connection went away without a protocol error or timeout of ours: the signature of the keep-alive race. */
function isCloseOrReset(err: Error): boolean {
  const code = (err as Error & { code?: string }).code;
  return code === 'UPSTREAM_CLOSED' || code === 'ECONNRESET' || code === 'EPIPE';
}

/**
 * Streams a request body to the connection with backpressure: Content-Length bodies as they are (a body that turns
 * out longer or shorter than declared fails the request), unknown lengths as chunks, ended by a last chunk that
 * carries the request's trailers (a Content-Length body has nowhere to put them).
 */
class BodyWriter {
  done = false;
  readonly #conn: Http1Connection;
  readonly #body: Readable;
  /** Declared length, or -1 for chunked. */
  readonly #expected: number;
  readonly #trailers: TrailerSlot | undefined;
  #written = 0;
  /** When the first body byte could be taken (0: not started). */
  #startedAt = 0;
  /** The upstream socket pushed back: a slow upload is then the upstream's doing, not the client's. */
  #blocked = false;

  constructor(conn: Http1Connection, body: Readable, expected: number, trailers: TrailerSlot | undefined) {
    this.#conn = conn;
    this.#body = body;
    this.#expected = expected;
    this.#trailers = trailers;
  }

  start(): void {
    const body = this.#body;
    this.#startedAt = systemClock.now();
    body.on('data', this.#onData);
    body.on('end', this.#onEnd);
    body.on('error', this.#onError);
    body.on('close', this.#onClose);
  }

  detach(): void {
    const body = this.#body;
    body.off('data', this.#onData);
    body.off('end', this.#onEnd);
    body.off('error', this.#onError);
    body.off('close', this.#onClose);
    // The body may still fail after we stop reading it (the client drops mid-upload after an early answer); an
    // 'error' with no listener would be an uncaught exception.
    if (body.listenerCount('error') === 0) body.on('error', ignore);
  }

  onDrain(): void {
    this.#blocked = false;
    if (!this.done) this.#body.resume();
  }

  /**
   * Bytes per second the downstream has sent since the body started, or undefined while that says nothing about the
   * client: not started, done, younger than `minAgeMs`, or held back by the upstream's backpressure.
   */
  clientRate(now: number, minAgeMs: number): number | undefined {
    if (this.done || this.#startedAt === 0 || this.#blocked || now - this.#startedAt < minAgeMs) return undefined;
    return (this.#written * 1000) / (now - this.#startedAt);
  }

  readonly #onData = (data: Buffer | string): void => {
    const chunk = typeof data === 'string' ? Buffer.from(data) : data;
    const n = chunk.length;
    if (n === 0) return; // in chunked framing an empty chunk would end the body
    this.#written += n;
    if (this.#expected >= 0 && this.#written > this.#expected) return this.#mismatch();
    const socket = this.#conn.socket;
    let ok: boolean;
    if (this.#expected >= 0) ok = socket.write(chunk);
    else {
      socket.cork();
      socket.write(chunkHeader(n), 'latin1');
      socket.write(chunk);
      ok = socket.write(CHUNK_END, 'latin1');
      socket.uncork();
    }
    if (!ok) {
      this.#blocked = true;
      this.#body.pause();
    }
  };

  readonly #onEnd = (): void => {
    if (this.#expected >= 0 && this.#written !== this.#expected) return this.#mismatch();
    this.done = true;
    this.detach();
    if (this.#expected >= 0) return;
    const trailers = this.#trailers?.fields;
    let last = LAST_CHUNK;
    if (trailers !== undefined) {
      try {
        last = lastChunk(trailers.raw);
      } catch (err) {
        this.#conn.fail(new ProxyError('DPE', `request trailers cannot be forwarded: ${(err as Error).message}`, { status: 400 }));
        return;
      }
    }
    this.#conn.socket.write(last, 'latin1');
  };

  readonly #onError = (err: Error): void => {
    this.detach();
    this.#conn.fail(new ProxyError('DC', `request body failed before its end: ${err.message}`, { cause: err }));
  };

  readonly #onClose = (): void => {
    if (!this.done) this.#onError(new Error('the downstream closed the request body'));
  };

  #mismatch(): void {
    this.detach();
    this.#conn.fail(new ProxyError('DPE', 'request body length does not match content-length', { status: 400 }));
  }
}
