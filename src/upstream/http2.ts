// HTTP/2 upstream (h2c prior knowledge, or h2 on the TLS connector): multiplexed sessions per endpoint, each filled up
// to its stream limit before another is opened; PING keep-alive, GOAWAY-aware retirement and transparent replay of
// streams a GOAWAY left unprocessed, idle expiry.
import http2 from 'node:http2';
import { PassThrough, type Readable } from 'node:stream';
import type { Cancellation } from '../core/cancel.js';
import { systemClock, type Clock } from '../core/clock.js';
import { ProxyError } from '../core/errors.js';
import { h2CodeName } from '../core/h2-codes.js';
import { HeaderList } from '../core/headers.js';
import type { ProxyRequest, ProxyResponse } from '../core/service.js';
import { forwardDeadline } from '../policies/timeout/deadline.js';
import { upstreamIdentityOf } from '../security/transport.js';
import { connectTarget, tcpConnector, type ConnectTarget, type Connector } from './connector.js';
import { poolClosedError, refusedStreamError, upstreamFailure } from './errors.js';
import { resetAfterHead } from './h2-reset.js';
import type { H2Observer } from './h2-observer.js';
import type { Upstream, UpstreamOptions } from './upstream.js';

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_FLAG_END_STREAM } = http2.constants;

/**
 * Streams the first session of an endpoint is taken to allow until the peer's SETTINGS arrive (later ones assume
 * what the last SETTINGS said): RFC 9113 6.5.2 recommends no less than 100, and nghttp2 holds back streams over
 * the limit rather than failing them.
 */
const STREAMS_BEFORE_SETTINGS = 100;

/** How long after connecting a session waits for the peer's SETTINGS before carrying streams anyway. */
const SETTINGS_GRACE_MS = 1000;

/**
 * Request body bytes kept until the response head so that a stream a GOAWAY left unprocessed can be replayed whole on
 * a new session (Envoy retries such streams transparently). A longer body is sent once; its refusal goes to the retry
 * policy, which has its own replay buffer.
 */
const GOAWAY_REPLAY_LIMIT = 64 * 1024;

/** Sends of one request on successive sessions that each went away before processing it. */
const GOAWAY_ATTEMPTS = 3;

interface Session {
  readonly session: http2.ClientHttp2Session;
  /** Resolves when the connection is up; rejects on connect failure or timeout. */
  readonly ready: Promise<void>;
  /** Streams in flight, and requests waiting for `ready`. */
  active: number;
  /** Streams this session carries before another is opened: min(peer's SETTINGS_MAX_CONCURRENT_STREAMS, config). */
  limit: number;
  /** Streams opened over its life (for max_requests_per_connection and the streams-per-session histogram). */
  opened: number;
  /** Takes no new streams: the peer sent GOAWAY, it reached its lifetime limit, or it died. */
  retired: boolean;
  connected: boolean;
  /** The last stream id of the peer's GOAWAY: streams above it were never processed (RFC 9113 6.8). */
  goneAway: number | undefined;
  goawayCode: number;
  /** Set when a PING went unanswered: every stream on it fails with this. */
  dead: ProxyError | undefined;
  /** When `active` last dropped to 0. */
  idleSince: number;
  idleArmed: boolean;
  /** Cancels the pending keep-alive timer (next PING or its deadline). */
  stopPing: (() => void) | undefined;
}

/** A stream refused by a session going away: replayable as-is when `body` is not undefined. */
class GoneAway {
  constructor(readonly error: ProxyError, readonly body: Readable | null | undefined) {}
}

export class Http2Upstream implements Upstream {
  readonly address: string;
  readonly #opts: UpstreamOptions;
  readonly #target: ConnectTarget;
  readonly #connector: Connector;
  readonly #clock: Clock;
  readonly #sessions: Session[] = [];
  /** The stream limit the last SETTINGS of this endpoint gave: what a new session assumes until its own arrive. */
  #peerLimit: number;
  #closed = false;
  #observer: H2Observer | undefined;
  #connected = 0;

  constructor(opts: UpstreamOptions, connector: Connector = tcpConnector, clock: Clock = systemClock) {
    this.address = opts.address;
    this.#opts = opts;
    this.#target = connectTarget(opts.address);
    this.#connector = connector;
    this.#clock = clock;
    this.#peerLimit = Math.min(STREAMS_BEFORE_SETTINGS, opts.maxConcurrentStreams);
  }

  get connections(): number {
    return this.#sessions.length;
  }

  /** Binds the session metrics (set by the runtime; the gauge moves over with the sessions already open). */
  set observer(o: H2Observer | undefined) {
    if (o === this.#observer) return;
    for (let i = 0; i < this.#connected; i++) this.#observer?.sessions(this.address, -1);
    this.#observer = o;
    for (let i = 0; i < this.#connected; i++) o?.sessions(this.address, 1);
  }

  async request(req: ProxyRequest, cancel: Cancellation): Promise<ProxyResponse> {
    for (let attempt = 1; ; attempt++) {
      if (this.#closed) throw poolClosedError(this.address);
      const s = await this.#acquire(cancel);
      try {
        return await this.#send(s, req, cancel);
      } catch (err) {
        if (!(err instanceof GoneAway)) throw err;
        // Nothing of it was processed: another session gets it, with the whole body, unless the caller gave up.
        if (err.body === undefined || attempt >= GOAWAY_ATTEMPTS || cancel.aborted) throw err.error;
        req.body = err.body;
      }
    }
  }

  /** A connected session with a stream slot for this request (counted in its `active`). */
  async #acquire(cancel: Cancellation): Promise<Session> {
    for (let moves = 0; ; moves++) {
      const s = this.#pick();
      s.active++;
      try {
        await s.ready;
      } catch (err) {
        this.#release(s);
        throw err;
      }
      if (cancel.aborted) {
        this.#release(s);
        throw cancel.reason;
      }
      // Picked before its SETTINGS said how many streams it allows: over that, another session may have room (past
      // max_connections nghttp2 holds the stream back until one of this session's ends).
      if (s.active <= s.limit || moves >= 2) return s;
      s.active--;
    }
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
        this.#release(s);
        const e = notOpened(err, this.address, this.#opts.connectTimeout);
        // No stream, so the body was not touched: it can go to another session as it is.
        reject(e.outcome === 'not-sent' && e.code === 'connection-closed' ? new GoneAway(e, req.body) : e);
        return;
      }
      // The stream opened, so the session is up and not destroyed (its socket proxy throws once it is): its TLS
      // connection's verified identity is known (access log upstream_identity).
      req.context.upstreamIdentity = upstreamIdentityOf(s.session.socket);
      s.opened++;
      const lifetime = this.#opts.maxRequestsPerConnection;
      if (lifetime > 0 && s.opened >= lifetime) this.#retire(s);
      const body = req.body;
      // What the body has given so far, kept until the response head for a replay after GOAWAY (see GOAWAY_REPLAY_LIMIT).
      let kept: Buffer[] | undefined;
      let keptBytes = 0;
      const keep = (chunk: Buffer): void => {
        keptBytes += chunk.length;
        if (keptBytes <= GOAWAY_REPLAY_LIMIT) kept!.push(chunk);
        else stopKeeping();
      };
      const stopKeeping = (): void => {
        if (kept === undefined) return;
        kept = undefined;
        body?.off('data', keep);
      };
      let settled = false;
      let done = false;
      /** The sidecar reset the stream itself (cancel, idle timeout): counted as sent. */
      let resetHere = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        this.#release(s);
      };
      const offCancel = cancel.onAbort((reason) => {
        resetHere = true;
        if (!stream.destroyed) stream.close(NGHTTP2_CANCEL);
        if (!settled) {
          settled = true;
          stopKeeping();
          reject(reason);
        } else stream.destroy(reason);
      });
      stream.setTimeout(this.#opts.streamIdleTimeout, () => {
        resetHere = true;
        stream.destroy(streamIdleError(this.address, settled));
      });
      stream.once('response', (h, flags) => {
        const status = Number(h[':status']);
        if (status < 200) return;
        settled = true;
        stopKeeping();
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
      const failed = (err: unknown): void => {
        if (settled) return;
        settled = true;
        if (cancel.reason !== undefined) return reject(cancel.reason);
        const e = this.#beforeHead(s, stream, err);
        if (e.code !== 'refused-stream' || s.goneAway === undefined) {
          stopKeeping();
          return reject(e);
        }
        reject(new GoneAway(e, body === null ? null : kept === undefined ? undefined : replayBody(body, stream, kept, keep)));
        kept = undefined;
      };
      stream.once('close', () => {
        finish();
        offCancel();
        const o = this.#observer;
        if (o !== undefined && resetHere) o.reset('sent', h2CodeName(stream.rstCode ?? NGHTTP2_CANCEL));
        if (!settled) failed(new Error(`stream closed (code ${stream.rstCode})`));
        else if (!stream.readableEnded) cutBody();
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
        if ((err as { code?: unknown }).code === 'ERR_HTTP2_STREAM_ERROR') this.#observer?.reset('received', h2CodeName(stream.rstCode ?? 0));
        failed(err);
      });
      const slot = req.trailers;
      if (body !== null && slot !== undefined) stream.once('wantTrailers', () => stream.sendTrailers(slot.fields?.toObject() ?? {}));
      if (body) {
        body.on('error', (err) => stream.destroy(err));
        body.pipe(stream);
        kept = [];
        body.on('data', keep);
      }
    });
  }

  /**
   * A stream that failed before its response head, typed by what the session and the peer said (never by message):
   * past a GOAWAY's last stream id or REFUSED_STREAM it was never processed; another reset code is UR with its name.
   */
  #beforeHead(s: Session, stream: http2.ClientHttp2Stream, err: unknown): ProxyError {
    const address = this.address;
    if (s.goneAway !== undefined && (stream.id === undefined || stream.id > s.goneAway)) {
      return new ProxyError('UC', `upstream ${address} sent GOAWAY (${h2CodeName(s.goawayCode)}) before processing the stream`, { endpoint: address, outcome: 'not-sent', code: 'refused-stream' });
    }
    if (s.dead !== undefined) return s.dead;
    if (err instanceof ProxyError) return err;
    if (s.goneAway !== undefined && s.goawayCode !== NGHTTP2_NO_ERROR) {
      return new ProxyError('UC', `upstream ${address} closed the connection with GOAWAY (${h2CodeName(s.goawayCode)})`, { endpoint: address, cause: err, outcome: 'possibly-accepted', code: 'connection-closed' });
    }
    const rst = stream.rstCode;
    const byPeer = (err as { code?: unknown } | null)?.code === 'ERR_HTTP2_STREAM_ERROR' || !(err as { code?: unknown } | null)?.code;
    if (rst === NGHTTP2_REFUSED_STREAM) return refusedStreamError(address);
    if (byPeer && rst !== undefined && rst !== NGHTTP2_NO_ERROR) {
      return new ProxyError('UR', `upstream ${address} reset the stream: ${h2CodeName(rst)}`, { endpoint: address, cause: err, outcome: 'possibly-accepted', code: 'stream-reset' });
    }
    return upstreamFailure(err, address, this.#opts.connectTimeout);
  }

  /**
   * The least busy session with a stream to spare; a new one when all are at their limit (up to max_connections);
   * past that, the least busy of all (nghttp2 queues streams over a peer's limit).
   */
  #pick(): Session {
    let free: Session | undefined;
    let least: Session | undefined;
    let usable = 0;
    for (const s of this.#sessions) {
      if (s.retired || s.session.closed || s.session.destroyed) continue;
      usable++;
      if (!least || s.active < least.active) least = s;
      if (s.active < s.limit && (!free || s.active < free.active)) free = s;
    }
    if (free) return free;
    if (!least || usable < this.#opts.maxConnections) return this.#open();
    return least;
  }

  #release(s: Session): void {
    if (--s.active > 0) return;
    if (s.retired) {
      // Its last stream is done and it takes no more: close it (a session the peer sent GOAWAY on is closing already).
      if (s.connected && s.goneAway === undefined && !s.session.closed && !s.session.destroyed) {
        this.#goaway(s);
        s.session.close();
      }
      return;
    }
    s.idleSince = this.#clock.now();
    if (!s.idleArmed) this.#armIdle(s, this.#opts.keepAliveTimeout);
  }

  /** keep_alive_timeout: one timer per idle spell, re-armed for what is left when the session was used meanwhile. */
  #armIdle(s: Session, ms: number): void {
    if (!(this.#opts.keepAliveTimeout > 0) || s.retired) return;
    s.idleArmed = true;
    this.#clock.setTimeout(() => {
      s.idleArmed = false;
      if (s.active > 0 || s.session.closed || s.session.destroyed) return;
      const left = s.idleSince + this.#opts.keepAliveTimeout - this.#clock.now();
      if (left > 0) return this.#armIdle(s, left);
      this.#retire(s);
      this.#goaway(s);
      s.session.close();
    }, ms);
  }

  #retire(s: Session): void {
    if (s.retired) return;
    s.retired = true;
    // Once its last stream is done, a retired session has nothing left to carry.
    if (s.active === 0 && s.connected && !s.session.closed) {
      this.#goaway(s);
      s.session.close();
    }
  }

  #goaway(s: Session): void {
    if (s.session.closed || s.session.destroyed) return;
    try {
      s.session.goaway(NGHTTP2_NO_ERROR);
      this.#observer?.goaway('sent', 'NO_ERROR');
    } catch {
      // already going away
    }
  }

  /** PING every keepalive_interval; no ACK within keepalive_timeout means the connection is gone (a black hole). */
  #keepalive(s: Session): void {
    const interval = this.#opts.h2KeepaliveInterval;
    const timeout = this.#opts.h2KeepaliveTimeout;
    if (!(interval > 0)) return;
    const clock = this.#clock;
    const tick = (): void => {
      s.stopPing = undefined;
      if (s.session.closed || s.session.destroyed) return;
      let acked = false;
      try {
        s.session.ping((err) => {
          if (err || s.session.destroyed) return;
          acked = true;
          s.stopPing?.();
          s.stopPing = clock.setTimeout(tick, interval);
        });
      } catch {
        return; // closing
      }
      s.stopPing = clock.setTimeout(() => {
        // An event loop that was busy runs timers before reading the socket: let it read the ACK first.
        setImmediate(() => {
          if (acked || s.session.destroyed) return;
          s.stopPing = undefined;
          s.dead = new ProxyError('UC', `upstream ${this.address} did not answer a PING within ${timeout}ms: connection closed`, {
            endpoint: this.address,
            outcome: 'possibly-accepted',
            code: 'connection-closed',
          });
          this.#retire(s);
          s.session.destroy(s.dead);
        });
      }, timeout);
    };
    s.stopPing = clock.setTimeout(tick, interval);
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
    // Ready once the peer's SETTINGS are in (its first frame, RFC 9113 3.4), so no stream goes out over its limit;
    // a peer that sends none is used after a grace.
    const ready = new Promise<void>((resolve, reject) => {
      session.once('remoteSettings', () => resolve());
      session.once('connect', () => this.#clock.setTimeout(resolve, SETTINGS_GRACE_MS));
      session.once('error', (err) => reject(upstreamFailure(err, this.address, timeout)));
      // Closed with no error before it connected (a connector that gave up quietly): nothing was sent.
      session.once('close', () => reject(closedWhileConnecting(this.address)));
    });
    ready.catch(() => {}); // observed by request(); avoid an unhandled rejection when nobody waits
    const entry: Session = {
      session,
      ready,
      active: 0,
      limit: assumed,
      opened: 0,
      retired: false,
      connected: false,
      goneAway: undefined,
      goawayCode: NGHTTP2_NO_ERROR,
      dead: undefined,
      idleSince: 0,
      idleArmed: false,
      stopPing: undefined,
    };
    this.#sessions.push(entry);
    session.once('connect', () => {
      entry.connected = true;
      this.#connected++;
      this.#observer?.sessions(this.address, 1);
      this.#keepalive(entry);
      if (entry.retired && entry.active === 0) session.close();
    });
    session.on('remoteSettings', (settings) => {
      entry.limit = this.#peerLimit = Math.min(settings.maxConcurrentStreams ?? configured, configured);
    });
    session.on('error', () => {}); // failures surface per stream
    session.once('close', () => {
      entry.retired = true;
      entry.stopPing?.();
      const i = this.#sessions.indexOf(entry);
      if (i >= 0) this.#sessions.splice(i, 1);
      if (entry.connected) {
        this.#connected--;
        this.#observer?.sessions(this.address, -1);
        this.#observer?.sessionClosed(entry.opened);
      }
    });
    // No new streams after GOAWAY; those it already carries finish (NO_ERROR) or fail (an error code).
    session.once('goaway', (code: number, lastStreamID: number) => {
      entry.goneAway = lastStreamID;
      entry.goawayCode = code;
      entry.retired = true;
      this.#observer?.goaway('received', h2CodeName(code));
    });
    return entry;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(
      this.#sessions.map((s) => new Promise<void>((resolve) => {
        s.stopPing?.();
        if (s.session.closed) return resolve();
        s.session.close(() => resolve());
      })),
    );
  }
}

/**
 * The body for a replay: what the refused stream took from it, then the rest. The refused stream is gone, so the
 * body is taken off it (pipe would also stop at its close, a tick later).
 */
function replayBody(body: Readable, refused: http2.ClientHttp2Stream, kept: Buffer[], keep: (c: Buffer) => void): Readable | undefined {
  body.off('data', keep);
  body.unpipe(refused);
  if (body.errored) return undefined;
  const replay = new PassThrough({ highWaterMark: 64 * 1024 });
  for (const c of kept) replay.write(c);
  if (body.readableEnded) replay.end();
  else {
    body.once('error', (err) => replay.destroy(err));
    body.pipe(replay);
  }
  return replay;
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
