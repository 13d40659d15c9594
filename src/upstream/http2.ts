// HTTP/2 cleartext (prior knowledge) upstream: multiplexed sessions per endpoint, each filled up to its stream limit
// before another is opened.
import http2 from 'node:http2';
import type { Cancellation } from '../core/cancel.js';
import { systemClock } from '../core/clock.js';
import { ProxyError } from '../core/errors.js';
import { HeaderList } from '../core/headers.js';
import type { ProxyRequest, ProxyResponse } from '../core/service.js';
import { forwardDeadline } from '../policies/timeout/deadline.js';
import { upstreamIdentityOf } from '../security/transport.js';
import { connectTarget, tcpConnector, type ConnectTarget, type Connector } from './connector.js';
import { poolClosedError, refusedStreamError, upstreamFailure } from './errors.js';
import { resetAfterHead } from './h2-reset.js';
import type { Upstream, UpstreamOptions } from './upstream.js';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_FLAG_END_STREAM, NGHTTP2_NO_ERROR } = http2.constants;

/**
 * Streams the first session of an endpoint is taken to allow until the peer's SETTINGS arrive (later ones assume
 * what the last SETTINGS said): RFC 9113 6.5.2 recommends no less than 100, and nghttp2 holds back streams over
 * the limit rather than failing them.
 */
const STREAMS_BEFORE_SETTINGS = 100;

interface Session {
  readonly session: http2.ClientHttp2Session;
  /** Resolves when the connection is up; rejects on connect failure or timeout. */
  readonly ready: Promise<void>;
  /** Streams in flight, and requests waiting for `ready`. */
  active: number;
  /** Streams this session carries before another is opened: min(peer's SETTINGS_MAX_CONCURRENT_STREAMS, config). */
  limit: number;
}

export class Http2Upstream implements Upstream {
  readonly address: string;
  readonly #opts: UpstreamOptions;
  readonly #target: ConnectTarget;
  readonly #connector: Connector;
  readonly #sessions: Session[] = [];
  /** The stream limit the last SETTINGS of this endpoint gave: what a new session assumes until its own arrive. */
  #peerLimit: number;
  #closed = false;

  constructor(opts: UpstreamOptions, connector: Connector = tcpConnector) {
    this.address = opts.address;
    this.#opts = opts;
    this.#target = connectTarget(opts.address);
    this.#connector = connector;
    this.#peerLimit = Math.min(STREAMS_BEFORE_SETTINGS, opts.maxConcurrentStreams);
  }

  get connections(): number {
    return this.#sessions.length;
  }

  async request(req: ProxyRequest, cancel: Cancellation): Promise<ProxyResponse> {
    if (this.#closed) throw poolClosedError(this.address);
    const s = this.#pick();
    s.active++;
    try {
      await s.ready;
    } catch (err) {
      s.active--;
      throw err;
    }
    if (cancel.aborted) {
      s.active--;
      throw cancel.reason;
    }
    return this.#send(s, req, cancel);
  }

  #send(s: Session, req: ProxyRequest, cancel: Cancellation): Promise<ProxyResponse> {
    // The budget left, measured as the attempt goes out (after any wait for the session).
    forwardDeadline(req.headers, req.context.deadline, systemClock.now());
    return new Promise<ProxyResponse>((resolve, reject) => {
      const headers: http2.OutgoingHttpHeaders = {
        ':method': req.method,
        ':path': req.path,
        ':authority': req.authority,
        ':scheme': req.scheme,
      };
      const raw = req.headers.raw;
      for (let i = 0; i < raw.length; i += 2) {
        const k = raw[i]!;
        if (k === 'host' || k === 'transfer-encoding' || k === 'connection') continue;
        const prev = headers[k];
        headers[k] = prev === undefined ? raw[i + 1]! : Array.isArray(prev) ? [...prev, raw[i + 1]!] : [String(prev), raw[i + 1]!];
      }
      let stream: http2.ClientHttp2Stream;
      try {
        // With a body that may end in trailers, the stream stays open after the last DATA frame until they are sent.
        stream = s.session.request(headers, { endStream: req.body === null, waitForTrailers: req.body !== null && req.trailers !== undefined });
      } catch (err) {
        s.active--;
        reject(notOpened(err, this.address, this.#opts.connectTimeout));
        return;
      }
      // The stream opened, so the session is up and not destroyed (its socket proxy throws once it is): its TLS
      // connection's verified identity is known (access log upstream_identity).
      req.context.upstreamIdentity = upstreamIdentityOf(s.session.socket);
      let settled = false;
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        s.active--;
      };
      const offCancel = cancel.onAbort((reason) => {
        if (!stream.destroyed) stream.close(NGHTTP2_CANCEL);
        if (!settled) {
          settled = true;
          reject(reason);
        } else stream.destroy(reason);
      });
      stream.setTimeout(this.#opts.streamIdleTimeout, () => {
        stream.destroy(streamIdleError(this.address, settled));
      });
      stream.once('response', (h, flags) => {
        const status = Number(h[':status']);
        if (status < 200) return;
        settled = true;
        if (flags & NGHTTP2_FLAG_END_STREAM) {
          // A head that ends the stream (gRPC's trailers-only answer): relayed with no body, so the downstream sends
          // one HEADERS frame with END_STREAM too; an empty body would add a DATA frame and break trailers-only.
          stream.resume();
          resolve({ status, headers: headersFrom(h), body: null, trailers: undefined });
          return;
        }
        const response: ProxyResponse = { status, headers: headersFrom(h), body: stream, trailers: undefined };
        // Ahead of the consumer's 'end': a reset (RST_STREAM code set) ends the readable side too. Trailers came
        // only with END_STREAM, so a stream that had them was complete whatever came after.
        stream.prependOnceListener('end', () => {
          if (stream.rstCode !== NGHTTP2_NO_ERROR && response.trailers === undefined) cutBody();
        });
        stream.once('trailers', (t) => {
          response.trailers = headersFrom(t);
        });
        resolve(response);
      });
      stream.once('close', () => {
        finish();
        offCancel();
        if (!settled) {
          settled = true;
          reject(this.#beforeHead(stream, new Error(`stream closed (code ${stream.rstCode})`)));
        } else if (!stream.readableEnded) cutBody();
      });
      /**
       * The upstream reset the stream after its head: node ends the body quietly (an 'end' as if complete, or only a
       * 'close'), so the body is failed here, before its consumer's 'end', and the downstream is cut too.
       */
      let cut = false;
      const cutBody = (): void => {
        if (cut || cancel.aborted || stream.errored !== null) return;
        cut = true;
        stream.emit('error', resetAfterHead(this.address, stream.rstCode));
      };
      stream.on('error', (err) => {
        if (!settled) {
          settled = true;
          reject(cancel.reason ?? this.#beforeHead(stream, err));
        }
      });
      const slot = req.trailers;
      if (req.body !== null && slot !== undefined) stream.once('wantTrailers', () => stream.sendTrailers(slot.fields?.toObject() ?? {}));
      if (req.body) {
        const body = req.body;
        body.on('error', (err) => stream.destroy(err));
        body.pipe(stream);
      }
    });
  }

  /** A stream that failed before its response head: REFUSED_STREAM (by its code, not its message) was never processed. */
  #beforeHead(stream: http2.ClientHttp2Stream, err: unknown): Error {
    if (stream.rstCode === NGHTTP2_REFUSED_STREAM) return refusedStreamError(this.address);
    return upstreamFailure(err, this.address, this.#opts.connectTimeout);
  }

  /**
   * The least busy session with a stream to spare; a new one when all are at their limit (up to max_connections);
   * past that, the least busy of all (nghttp2 queues streams over a peer's limit).
   */
  #pick(): Session {
    let free: Session | undefined;
    let least: Session | undefined;
    for (const s of this.#sessions) {
      if (s.session.closed || s.session.destroyed) continue;
      if (!least || s.active < least.active) least = s;
      if (s.active < s.limit && (!free || s.active < free.active)) free = s;
    }
    if (free) return free;
    if (!least || this.#sessions.length < this.#opts.maxConnections) return this.#open();
    return least;
  }

  #open(): Session {
    const configured = this.#opts.maxConcurrentStreams;
    const assumed = Math.max(1, this.#peerLimit); // a peer that allowed 0 streams may allow more next time
    const target = this.#target;
    const timeout = this.#opts.connectTimeout;
    // The connector owns the connect timeout: a connect that hangs fails the session with a typed UF 504 (not sent).
    const session = http2.connect(`http://${this.address}`, {
      peerMaxConcurrentStreams: assumed,
      createConnection: () => this.#connector(target, { timeout }),
    });
    const ready = new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.once('error', (err) => reject(upstreamFailure(err, this.address, timeout)));
      // Closed with no error before it connected (a connector that gave up quietly): nothing was sent.
      session.once('close', () => reject(closedWhileConnecting(this.address)));
    });
    ready.catch(() => {}); // observed by request(); avoid an unhandled rejection when nobody waits
    const entry: Session = { session, ready, active: 0, limit: assumed };
    this.#sessions.push(entry);
    session.on('remoteSettings', (settings) => {
      entry.limit = this.#peerLimit = Math.min(settings.maxConcurrentStreams ?? configured, configured);
    });
    session.on('error', () => {}); // failures surface per stream
    session.once('close', () => {
      const i = this.#sessions.indexOf(entry);
      if (i >= 0) this.#sessions.splice(i, 1);
    });
    session.once('goaway', () => {
      const i = this.#sessions.indexOf(entry);
      if (i >= 0) this.#sessions.splice(i, 1);
    });
    session.setTimeout(this.#opts.keepAliveTimeout, () => {
      if (entry.active === 0) session.close();
    });
    return entry;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(
      this.#sessions.map((s) => new Promise<void>((resolve) => {
        if (s.session.closed) return resolve();
        s.session.close(() => resolve());
      })),
    );
  }
}

/** Codes with which session.request() refuses to open a stream on a session that is going away. */
const SESSION_GONE: ReadonlySet<string> = new Set(['ERR_HTTP2_INVALID_SESSION', 'ERR_HTTP2_GOAWAY_SESSION', 'ERR_HTTP2_OUT_OF_STREAMS']);

/** session.request() threw: no stream was opened, so a session going away sent nothing. */
function notOpened(err: unknown, address: string, connectTimeout: number): ProxyError {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && SESSION_GONE.has(code)) {
    return new ProxyError('UC', `upstream connection to ${address} was closing: ${code}`, { endpoint: address, cause: err, outcome: 'not-sent', code: 'connection-closed' });
  }
  return upstreamFailure(err, address, connectTimeout);
}

const closedWhileConnecting = (address: string): ProxyError =>
  new ProxyError('UF', `upstream connection to ${address} closed while connecting`, { endpoint: address, outcome: 'not-sent', code: 'connection-closed' });

/** No bytes for stream_idle_timeout: before the head the upstream may have taken the request; after, it did. */
function streamIdleError(address: string, headArrived: boolean): ProxyError {
  return new ProxyError('UT', `upstream ${address} stream idle timeout`, {
    endpoint: address,
    outcome: headArrived ? 'response-started' : 'possibly-accepted',
    code: 'timeout',
  });
}

function headersFrom(h: http2.IncomingHttpHeaders): HeaderList {
  const raw: string[] = [];
  for (const k in h) {
    if (k.charCodeAt(0) === 58 /* ':' */) continue;
    const v = h[k];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const item of v) raw.push(k, item);
    else raw.push(k, v);
  }
  return new HeaderList(raw);
}
