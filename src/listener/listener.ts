// A downstream listener: accepts TCP, tells HTTP/1.1 from HTTP/2 prior knowledge by the preface, enforces
// connection limits and timeouts, and drains on shutdown.
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { ListenerConfig } from '../config/schema.js';
import type { ServerDeps } from '../http-server/exchange.js';
import { createHttp1Handler } from '../http-server/http1.js';
import { createHttp2Handler } from '../http-server/http2.js';
import { h2CodeName } from '../core/h2-codes.js';
import { H2Guard } from '../http-server/h2-guard.js';
import { systemClock } from '../core/clock.js';
import { ConnectionMarks } from '../http-server/connection-marks.js';
import { rejectOnSocket } from '../http-server/respond.js';
import { newContext, record } from '../http-server/exchange.js';
import { overflowedInRequestLine } from '../http-server/hygiene.js';
import { handleConnect, handleUpgrade } from './tunnel.js';
import type { TlsFront } from './tls.js';
import type { TLSSocket } from 'node:tls';
import { setTransport, transportOf } from '../security/transport.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** The settings that need a new socket server when they change; everything else is read per request. */
export const listenerIdentity = (c: ListenerConfig): string =>
  JSON.stringify([c.address, c.port, c.protocol, c.limits.max_header_bytes, c.limits.header_read_timeout, c.limits.idle_timeout, c.limits.max_connections, c.limits.max_concurrent_streams, c.tls ?? null]);

/** `Upgrade: h2c` (RFC 7540's cleartext upgrade, deprecated by RFC 9113): the sidecar does not take it up. */
const isH2cUpgrade = (req: http.IncomingMessage): boolean => req.method !== 'CONNECT' && /^\s*h2c\s*$/i.test(req.headers.upgrade ?? '');

/**
 * Serves an upgrade request the sidecar declines as the plain HTTP/1.1 request it also is (RFC 9110 lets a server
 * ignore Upgrade). node:http has already handed the socket over, so the request head is written again without
 * Upgrade, HTTP2-Settings and Connection, put back in front of any body bytes already read, and the socket is given
 * to the HTTP server once more: body, keep-alive and everything else then work as for any request.
 */
function serveWithoutUpgrade(server: http.Server, req: http.IncomingMessage, socket: Socket, head: Buffer): void {
  let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === 'upgrade' || name === 'http2-settings' || name === 'connection') continue;
    text += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  socket.unshift(head.length > 0 ? Buffer.concat([Buffer.from(`${text}\r\n`, 'latin1'), head]) : Buffer.from(`${text}\r\n`, 'latin1'));
  server.emit('connection', socket);
}

/** Node's own key for a session's setTimeout timer, found on the first session that closes (undefined: none). */
let sessionTimerKey: symbol | null | undefined = null;

/**
 * Node 20 keeps a session's setTimeout timer armed after the session is destroyed (setTimeout(0) is a no-op by then),
 * and the timer holds the session, its socket and its streams until idle_timeout fires: under a churn of short
 * connections that is idle_timeout's worth of dead sessions on the heap (the fuzz campaign's memory check found it;
 * smithy-typescript#2258 is the same on the client side). Cleared when the session closes.
 */
function clearSessionTimer(session: http2.ServerHttp2Session): void {
  if (sessionTimerKey === null) sessionTimerKey = Object.getOwnPropertySymbols(session).find((k) => k.description === 'timeout');
  if (sessionTimerKey === undefined) return;
  const timer = (session as unknown as Record<symbol, NodeJS.Timeout | undefined>)[sessionTimerKey];
  if (timer !== undefined) clearTimeout(timer);
}

/** An idle session's PING must be answered within this, or the session is destroyed rather than closed gracefully. */
const IDLE_PING_TIMEOUT_MS = 2000;

/**
 * Closes a session idle for idle_timeout: GOAWAY, and streams still in flight finish. A session nghttp2 has already
 * ended on its own (a connection error it answered with GOAWAY itself, e.g. DATA on stream 0, a malformed SETTINGS
 * or WINDOW_UPDATE) never completes that close: Node stops reading it and says nothing, so its socket would sit in
 * CLOSE-WAIT and its session on the heap for good (one frame per connection would use up max_connections). A PING
 * tells them apart: a live client answers it (its long requests go on), a dead or ended session is destroyed.
 */
function closeIdle(session: http2.ServerHttp2Session): void {
  let alive = false;
  try {
    session.ping((err) => (alive = err === null));
  } catch {
    // too many PINGs outstanding: the peer is not answering them
  }
  session.close();
  if (session.destroyed) return;
  const timer = setTimeout(() => alive || session.destroy(), IDLE_PING_TIMEOUT_MS);
  timer.unref();
  session.once('close', () => clearTimeout(timer));
}

export class Listener {
  readonly name: string;
  readonly config: ListenerConfig;
  readonly #deps: ServerDeps;
  readonly #net: net.Server;
  readonly #h1: http.Server;
  readonly #h2: http2.Http2Server;
  readonly #sockets = new Set<Socket>();
  readonly #sessions = new Set<http2.ServerHttp2Session>();
  /** Terminates TLS when the listener has `tls`; its sockets are also cut on close. */
  readonly #tls: TlsFront | undefined;
  readonly #tlsSockets = new Set<TLSSocket>();
  /** What this listener and its HTTP adapters know about its connections (answered, rejected, in a request, cut by drain). */
  readonly #marks = new ConnectionMarks();
  /** Still accepting, but every response says Connection: close and every session gets GOAWAY (drain_delay). */
  #draining = false;
  /** No longer accepting: in-flight requests finish, then what is left is cut (drain_timeout). */
  #closing = false;

  /** `tlsFront`: listener/tls.ts's TlsFront, loaded on demand; required when the listener has `tls`. */
  constructor(config: ListenerConfig, deps: ServerDeps, tlsFront?: typeof TlsFront) {
    this.name = config.name;
    this.config = config;
    this.#deps = deps;
    const limits = config.limits;
    const opts = { listener: config.name, localAuthority: `${config.address}:${config.port}`, draining: () => this.#draining, marks: this.#marks };

    this.#h1 = http.createServer(
      {
        maxHeaderSize: limits.max_header_bytes,
        requireHostHeader: false, // checked by the hygiene pass, which also rejects duplicates
        headersTimeout: limits.header_read_timeout,
        requestTimeout: 0,
        keepAliveTimeout: limits.idle_timeout,
        connectionsCheckingInterval: Math.min(1000, limits.header_read_timeout),
        joinDuplicateHeaders: false,
        noDelay: true,
      },
      createHttp1Handler(opts, deps),
    );
    // node:http would silently drop fields past its count; the hygiene pass answers 431 past max_headers_count.
    this.#h1.maxHeadersCount = 0;
    const onRequest = this.#h1.listeners('request')[0] as (req: http.IncomingMessage, res: http.ServerResponse) => void;
    // Expect: 100-continue is answered when the upstream starts reading the body, not before routing.
    this.#h1.on('checkContinue', onRequest);
    // Any other Expect value is answered by the hygiene pass (417, connection closed), not by node:http.
    this.#h1.on('checkExpectation', onRequest);
    this.#h1.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
      if (isH2cUpgrade(req)) serveWithoutUpgrade(this.#h1, req, socket, head);
      else
        handleUpgrade(config.name, deps, req, socket, head, () => {
          serveWithoutUpgrade(this.#h1, req, socket, head);
          socket.resume(); // handleUpgrade paused it
        });
    });
    this.#h1.on('connect', (req: http.IncomingMessage, socket: Socket, head: Buffer) => handleConnect(config.name, deps, req, socket, head));
    this.#h1.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.#onClientError(err, socket));
    // node:http only starts its header-timeout checks on 'listening'; the net server below owns the port.
    this.#h1.emit('listening');

    this.#h2 = http2.createServer({
      // Past max_headers_count the hygiene pass answers 431; this only bounds what nghttp2 accepts before that.
      maxHeaderListPairs: 2048,
      // Twice the limit on the wire, so a list somewhat over max_header_bytes gets a 431 from the handler rather than
      // a bare stream reset (Node's HTTP/2 still refuses any header block over 64 KiB with REFUSED_STREAM).
      settings: { maxHeaderListSize: limits.max_header_bytes * 2, maxConcurrentStreams: limits.max_concurrent_streams },
      maxSessionMemory: 64,
      // A client that keeps opening streams past max_concurrent_streams, or sends frames that break the protocol,
      // loses its session after 100 of them (Node's defaults allow 1000 invalid frames).
      maxSessionInvalidFrames: 100,
      maxSessionRejectedStreams: 100,
    });
    const goaways = deps.metrics.h2Goaways;
    // The guard answers rapid resets with GOAWAY ENHANCE_YOUR_CALM (and only those: other failures are destroyed).
    const guard = new H2Guard(config.name, (reason) => {
      if (reason === 'rapid_reset') goaways.get({ side: 'downstream', direction: 'sent', code: 'ENHANCE_YOUR_CALM' }).inc();
      return deps.metrics.http2SessionsEnded.get({ listener: config.name, reason });
    }, deps.logger, systemClock);
    const onStream = createHttp2Handler(config.name, deps, guard, this.#marks);
    this.#h2.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) =>
      onStream(stream, headers, flags, rawHeaders),
    );
    this.#h2.on('session', (session: http2.ServerHttp2Session) => {
      this.#sessions.add(session);
      const transport = transportOf(session.socket);
      if (transport) setTransport(session, transport);
      session.setTimeout(limits.idle_timeout, () => closeIdle(session));
      session.once('close', () => {
        this.#sessions.delete(session);
        clearSessionTimer(session);
      });
      session.once('goaway', (code: number) => goaways.get({ direction: 'received', code: h2CodeName(code) }).inc());
      if (this.#closing) this.#goaway(session);
      // A caller that connects during drain_delay gets its first request served, then GOAWAY: it moves elsewhere.
      else if (this.#draining) session.once('stream', () => this.#goaway(session));
    });
    // A session that failed (a flood of invalid frames or refused streams, a protocol error) must not leave its socket
    // half-open until idle_timeout; the guard also ends sessions that reset streams as fast as they open them.
    this.#h2.on('sessionError', (err: Error, session: http2.ServerHttp2Session) => guard.sessionFailed(session, err));

    this.#net = net.createServer({ noDelay: true }, (socket) => this.#onConnection(socket));
    this.#net.maxConnections = limits.max_connections;
    if (config.tls && !tlsFront) throw new Error(`listener ${config.name} has tls but the TLS code was not loaded`);
    this.#tls = config.tls && tlsFront
      ? new tlsFront(config.name, config.tls, deps, {
          plaintext: (socket) => this.#serveCleartext(socket),
          secure: (socket) => {
            this.#tlsSockets.add(socket);
            socket.once('close', () => this.#tlsSockets.delete(socket));
            socket.on('error', () => {});
            // ALPN decides: no protocol negotiated is HTTP/1.1.
            if (socket.alpnProtocol === 'h2') this.#h2.emit('connection', socket);
            else this.#h1.emit('connection', socket);
          },
        })
      : undefined;
  }

  #onConnection(socket: Socket): void {
    const gauges = this.#deps.current().listeners.get(this.name)?.gauges;
    gauges?.accepted.inc();
    gauges?.connections.inc();
    this.#sockets.add(socket);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      gauges?.connections.dec();
    });
    const logger = this.#deps.logger;
    if (logger.debugEnabled) {
      const peer = `${socket.remoteAddress}:${socket.remotePort}`;
      logger.debug({ listener: this.name, peer, draining: this.#draining }, 'downstream connection opened');
      socket.once('close', () => logger.debug({ listener: this.name, peer, bytes_in: socket.bytesRead, bytes_out: socket.bytesWritten }, 'downstream connection closed'));
    }
    socket.on('error', () => {}); // handled by the HTTP layer; a reset must not crash the process
    if (this.#closing) {
      socket.destroy();
      return;
    }
    if (this.#tls) {
      this.#tls.accept(socket);
      return;
    }
    this.#serveCleartext(socket);
  }

  #serveCleartext(socket: Socket): void {
    if (this.config.protocol === 'http1') {
      this.#h1.emit('connection', socket);
      return;
    }
    // Read the first bytes to tell HTTP/2 prior knowledge from HTTP/1.x.
    socket.setTimeout(this.config.limits.header_read_timeout, () => socket.destroy());
    let seen: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      seen = seen.length ? Buffer.concat([seen, chunk]) : chunk;
      const n = Math.min(seen.length, PREFACE.length);
      const looksH2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (looksH2 && seen.length < PREFACE.length) return; // wait for the rest of the preface
      socket.off('data', onData);
      socket.setTimeout(0);
      if (looksH2) {
        // HTTP/2 reads the unshifted preface on its next tick; left flowing, it would flow away unread.
        socket.pause();
        socket.unshift(seen);
        this.#h2.emit('connection', socket);
        return;
      }
      // Left flowing: the unshifted bytes reach node:http's parser as the next 'data' of this same flow. A pause and
      // resume here raced node:http's own pause/resume handling of the socket it reads directly: its deferred
      // 'resume' could restart reading after the parser had paused for backpressure, and a request body that
      // nobody read then piled up in memory without bound.
      socket.unshift(seen);
      this.#h1.emit('connection', socket);
    };
    socket.on('data', onData);
  }

  #onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    // The client went away (a reset, or a close in the middle of a message): nobody to answer, and the request's own
    // close handler logs it as DC, not as a malformed request.
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'HPE_INVALID_EOF_STATE' || !socket.writable) {
      socket.destroy();
      return;
    }
    if (this.#marks.answered.has(socket)) {
      // The handler already rejected this request (Connection: close): the response closes the socket; do not wait for ever.
      socket.setTimeout(2000, () => socket.destroy());
      return;
    }
    const [status, message] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? this.#headOverflow(err as NodeJS.ErrnoException & { rawPacket?: Buffer; bytesParsed?: number })
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT'
          ? [408, 'request head not received within header_read_timeout']
          : [400, `malformed request: ${(err as { reason?: string }).reason ?? err.message}`];
    this.#deps.metrics.rejected.get({ listener: this.name, status: String(status) }).inc();
    if (this.#marks.active.has(socket)) {
      // The head was accepted and the request is in the handler: it logs the rejection and must not forward.
      this.#marks.rejected.set(socket, { status, message });
    } else {
      const lr = this.#deps.current().listeners.get(this.name);
      if (lr) {
        const ctx = newContext(this.name, socket.remoteAddress ?? '', 'HTTP/1.1', undefined);
        ctx.flag = 'DPE';
        ctx.error = message;
        record(this.#deps, lr.noRouteStats, { method: '', authority: '', path: '', userAgent: undefined }, ctx, status, 0, 0);
      }
    }
    rejectOnSocket(socket, status, message);
  }

  /** llhttp counts the request line into max_header_bytes: a target that long is answered as one (414). */
  #headOverflow(err: { rawPacket?: Buffer; bytesParsed?: number }): [number, string] {
    const { max_header_bytes: headerBytes, max_uri_length: uriLength } = this.config.limits;
    if (!overflowedInRequestLine(err.rawPacket, err.bytesParsed ?? 0)) return [431, `request headers are over max_header_bytes ${headerBytes}`];
    return [414, uriLength < headerBytes ? `request target is over max_uri_length ${uriLength}` : `request line is over max_header_bytes ${headerBytes}`];
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#net.once('error', onError);
      this.#net.listen({ host: this.config.address, port: this.config.port, backlog: 1024 }, () => {
        this.#net.off('error', onError);
        this.#deps.logger.debug({ listener: this.name, address: this.config.address, port: this.port, mode: this.config.mode, routes: this.config.routes.length }, 'listener bound');
        resolve();
      });
    });
  }

  get port(): number {
    return (this.#net.address() as AddressInfo | null)?.port ?? this.config.port;
  }

  /** True while the listening socket is bound (false once it stopped accepting or closed). */
  get listening(): boolean {
    return this.#net.listening;
  }

  get connections(): number {
    return this.#sockets.size;
  }

  /** Gives up the listening port at once; open connections carry on (a replacement is about to bind the port). */
  async stopAccepting(): Promise<void> {
    this.#net.close();
    // The handle closes on the next turn of the loop; only then is the port free to bind again.
    await new Promise((r) => setImmediate(r));
  }

  /**
   * Drain, first phase: keeps accepting, but responses carry Connection: close and HTTP/2 sessions get GOAWAY, so
   * callers (and load balancers still sending here) move to another instance. close() follows after drain_delay.
   */
  startDrain(): void {
    if (this.#draining) return;
    this.#draining = true;
    for (const s of this.#sessions) this.#goaway(s);
  }

  /** Graceful GOAWAY (close(): streams in flight finish, new ones are refused), counted once per session. */
  #goaway(session: http2.ServerHttp2Session): void {
    if (session.closed || session.destroyed) return;
    this.#deps.metrics.h2Goaways.get({ side: 'downstream', direction: 'sent', code: 'NO_ERROR' }).inc();
    session.close();
  }

  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Stops accepting, lets in-flight requests finish (keep-alive responses carry Connection: close, HTTP/2 sessions
   * get GOAWAY), and destroys whatever is left after `timeoutMs`. Resolves with the number of connections it cut.
   */
  async close(timeoutMs: number): Promise<number> {
    this.#draining = true;
    this.#closing = true;
    const closed = this.#net.listening ? new Promise<void>((resolve) => this.#net.close(() => resolve())) : Promise.resolve();
    this.#h1.closeIdleConnections();
    for (const s of this.#sessions) this.#goaway(s);
    const deadline = Date.now() + timeoutMs;
    while (this.#sockets.size > 0 && Date.now() < deadline) {
      this.#h1.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 50));
    }
    const cut = this.#sockets.size;
    for (const s of this.#sessions) this.#marks.drainCut.add(s);
    for (const s of this.#sockets) {
      this.#marks.drainCut.add(s);
      s.destroy();
    }
    for (const s of this.#tlsSockets) s.destroy();
    this.#tls?.close();
    this.#h1.close(); // also stops node:http's header-timeout interval
    await closed;
    this.#deps.logger.debug({ listener: this.name, port: this.port, connections_cut: cut }, 'listener closed');
    return cut;
  }
}

