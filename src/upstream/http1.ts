// HTTP/1.1 upstream: an undici Pool per endpoint, driven through the low-level dispatch handler to avoid per-request wrappers.
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { Client as ClientType, Dispatcher, Pool as PoolType } from 'undici';

// undici's index loads fetch, WebSocket, caches and more (about 9 MiB of RSS); the proxy needs only the Pool.
const requireUndici = createRequire(import.meta.url);
const Pool = requireUndici('undici/lib/dispatcher/pool.js') as typeof PoolType;
const Client = requireUndici('undici/lib/dispatcher/client.js') as typeof ClientType;
/** undici's lookup of well-known header names: the interned lower-case string, with no new string per response. */
const { bufferToLowerCasedHeaderName } = requireUndici('undici/lib/core/util.js') as { bufferToLowerCasedHeaderName: (name: Buffer) => string };
import type { Cancellation } from '../core/cancel.js';
import { systemClock } from '../core/clock.js';
import { ProxyError } from '../core/errors.js';
import { HeaderList } from '../core/headers.js';
import type { ProxyRequest, ProxyResponse } from '../core/service.js';
import { PushedBody } from '../core/pushed-body.js';
import { forwardDeadline } from '../policies/timeout/deadline.js';
import { upstreamFailure } from './errors.js';
import type { Upstream, UpstreamOptions } from './upstream.js';

/**
 * One pooled undici Client and its current socket. The socket is known from the Client's connector, and every request
 * written on it is counted (in ResponseHandler.onConnect, which undici calls just before writing the request), so a
 * failed request knows whether its socket had already carried a complete exchange: the keep-alive race.
 */
interface Connection {
  readonly client: ClientType;
  socket: Socket | undefined;
  /** Requests written on `socket` so far. */
  uses: number;
}

/** Called once per transparent replay after a stale pooled connection (label: ctx.cluster). */
export type StaleReplayObserver = (cluster: string) => void;

export class Http1Upstream implements Upstream {
  readonly address: string;
  readonly #pool: PoolType;
  readonly #opts: UpstreamOptions;
  /** Counts sidecar_upstream_stale_connection_replays_total; set by the runtime (pools outlive snapshots). */
  onStaleReplay: StaleReplayObserver | undefined;

  constructor(opts: UpstreamOptions) {
    this.address = opts.address;
    this.#opts = opts;
    this.#pool = new Pool(`http://${opts.address}`, {
      connections: opts.maxConnections,
      pipelining: 1,
      keepAliveTimeout: opts.keepAliveTimeout,
      keepAliveMaxTimeout: opts.keepAliveTimeout,
      // Expire pooled sockets 1s before the upstream's announced Keep-Alive timeout (the keep-alive race).
      keepAliveTimeoutThreshold: 1000,
      maxRequestsPerClient: opts.maxRequestsPerConnection || undefined,
      connect: { timeout: opts.connectTimeout, noDelay: true },
      connectTimeout: opts.connectTimeout,
      headersTimeout: 0, // the route timeout governs time to headers
      bodyTimeout: opts.streamIdleTimeout,
      strictContentLength: true,
      factory: (origin: string | URL, options: object) => {
        const base = (options as { connect: (o: object, cb: (err: Error | null, socket: Socket | null) => void) => void }).connect;
        let conn: Connection | undefined;
        const client = new Client(origin, {
          ...options,
          connect: (o: object, cb: (err: Error | null, socket: Socket | null) => void) =>
            base(o, (err, socket) => {
              if (socket && conn) {
                conn.socket = socket;
                conn.uses = 0;
              }
              cb(err, socket);
            }),
        } as ClientType.Options);
        const c: Connection = (conn = { client, socket: undefined, uses: 0 });
        const dispatch = client.dispatch.bind(client);
        client.dispatch = (o, handler) => {
          if (handler instanceof ResponseHandler) handler.conn = c;
          return dispatch(o, handler);
        };
        return client;
      },
    } as PoolType.Options);
  }

  get connections(): number {
    return this.#pool.stats.connected;
  }

  request(req: ProxyRequest, cancel: Cancellation): Promise<ProxyResponse> {
    return new Promise<ProxyResponse>((resolve, reject) => {
      const opts = {
        path: req.path,
        method: req.method,
        headers: withHost(req),
        body: req.body,
        blocking: false,
      } as Dispatcher.DispatchOptions;
      // Replayable after the keep-alive race only when no request body can have been consumed.
      const replayable = req.body === null || req.contentLength === 0;
      const handler = new ResponseHandler(resolve, reject, cancel, this.address, this.#opts.connectTimeout, replayable ? { upstream: this, req, opts } : undefined);
      this.#pool.dispatch(opts, handler);
    });
  }

  /** Sends a request again after the keep-alive race; the failed Client has lost its socket, so this opens a fresh one. */
  replay(r: Replay, conn: Connection, handler: Dispatcher.DispatchHandler): void {
    this.onStaleReplay?.(r.req.context.cluster);
    r.opts.body = null;
    // Same header array as opts.headers: refresh the budget left for the new attempt.
    forwardDeadline(r.req.headers, r.req.context.deadline, systemClock.now());
    conn.client.dispatch(r.opts, handler);
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}

function withHost(req: ProxyRequest): string[] {
  // undici takes the Host from the headers when present; the authority is authoritative.
  req.headers.set('host', req.authority);
  forwardDeadline(req.headers, req.context.deadline, systemClock.now());
  return req.headers.raw;
}

/**
 * What a transparent replay needs, held as data rather than in a closure: a per-request closure over the request
 * kept every request's objects reachable from old space for a while, tripling scavenge survivors and pauses.
 */
interface Replay {
  readonly upstream: Http1Upstream;
  readonly req: ProxyRequest;
  readonly opts: Dispatcher.DispatchOptions;
}

/** A body still buffered when the response completes is handed over whole, up to this size; more becomes a stream. */
const WHOLE_BODY_LIMIT = 64 * 1024;
const EMPTY = Buffer.alloc(0);

/**
 * undici's callback handler. The response is settled once the parser has finished with the packet that carried its
 * head (a microtask later): a small response is usually complete by then and is handed over as one Buffer, sparing a
 * stream per request; otherwise the body becomes a PushedBody fed by the later callbacks, with backpressure.
 */
class ResponseHandler implements Dispatcher.DispatchHandler {
  #resolve: ((r: ProxyResponse) => void) | undefined;
  #reject: ((e: unknown) => void) | undefined;
  #response: ProxyResponse | undefined;
  /** The body stream, once the response was settled as a stream. */
  #body: PushedBody | undefined;
  /** Body chunks that arrived before the response was settled. */
  #chunks: Buffer[] | undefined;
  #chunkBytes = 0;
  #resume: (() => void) | undefined;
  readonly #cancel: Cancellation;
  readonly #address: string;
  readonly #connectTimeout: number;
  /** Set by the pool's Client on dispatch: the connection this request is queued on. */
  conn: Connection | undefined;
  /** How to send the request again on a fresh connection; undefined when it is not replayable (or was replayed). */
  #replay: Replay | undefined;
  /** The socket this request was written on, and whether it had carried an earlier request. */
  #socket: Socket | undefined;
  #reused = false;
  #bytesReadAtWrite = 0;
  #offCancel: (() => void) | undefined;

  constructor(
    resolve: (r: ProxyResponse) => void,
    reject: (e: unknown) => void,
    cancel: Cancellation,
    address: string,
    connectTimeout: number,
    replay: Replay | undefined,
  ) {
    this.#replay = replay;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#cancel = cancel;
    this.#address = address;
    this.#connectTimeout = connectTimeout;
  }

  onConnect(abort: (err?: Error) => void): void {
    const conn = this.conn;
    if (conn !== undefined) {
      this.#socket = conn.socket;
      this.#reused = conn.uses++ > 0;
      this.#bytesReadAtWrite = conn.socket?.bytesRead ?? 0;
    }
    if (this.#cancel.aborted) abort(this.#cancel.reason);
    else this.#offCancel = this.#cancel.onAbort(abort);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx informational: the proxy answers Expect itself
    const raw: string[] = new Array<string>(rawHeaders.length);
    for (let i = 0; i < rawHeaders.length; i += 2) {
      raw[i] = bufferToLowerCasedHeaderName(rawHeaders[i]!);
      raw[i + 1] = rawHeaders[i + 1]!.toString('latin1');
    }
    this.#response = { status: statusCode, headers: new HeaderList(raw), body: null, trailers: undefined };
    this.#resume = resume;
    queueMicrotask(() => this.#settleAsStream());
    return true;
  }

  onData(chunk: Buffer): boolean {
    const body = this.#body;
    if (body !== undefined) return body.push(chunk);
    (this.#chunks ??= []).push(chunk);
    this.#chunkBytes += chunk.length;
    if (this.#chunkBytes > WHOLE_BODY_LIMIT) this.#settleAsStream();
    return true;
  }

  onComplete(trailers: string[] | Buffer[] | null): void {
    const response = this.#response!;
    if (trailers && trailers.length) {
      const raw: string[] = [];
      for (let i = 0; i < trailers.length; i += 2) raw.push(String(trailers[i]).toLowerCase(), String(trailers[i + 1]));
      response.trailers = new HeaderList(raw);
    }
    const body = this.#body;
    if (body !== undefined) {
      body.finish();
      return;
    }
    const chunks = this.#chunks;
    response.body = chunks === undefined ? EMPTY : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#chunkBytes);
    this.#chunks = undefined;
    this.#settle(response);
  }

  /** The response is not complete yet (or is large): hand it over with a stream that the later callbacks feed. */
  #settleAsStream(): void {
    const response = this.#response;
    if (this.#resolve === undefined || response === undefined) return;
    const body = new PushedBody();
    body.onDemand = this.#resume;
    const chunks = this.#chunks;
    if (chunks !== undefined) for (const c of chunks) body.push(c);
    this.#chunks = undefined;
    this.#body = response.body = body;
    this.#settle(response);
  }

  #settle(response: ProxyResponse): void {
    const resolve = this.#resolve;
    this.#resolve = this.#reject = undefined;
    resolve?.(response);
  }

  onError(err: Error): void {
    // A head arrived and the response was not handed over yet: it fails as a stream, like any reset mid-response.
    if (this.#response !== undefined && this.#resolve !== undefined) this.#settleAsStream();
    const reject = this.#reject;
    if (reject) {
      const replay = this.#replay;
      const conn = this.conn;
      if (replay !== undefined && conn !== undefined && this.#reused && !this.#cancel.aborted && isStaleClose(err, this.#socket, this.#bytesReadAtWrite)) {
        // The keep-alive race: the upstream closed a reused idle connection as the request went out. Once, on a fresh one.
        this.#replay = undefined;
        this.#offCancel?.();
        this.#offCancel = undefined;
        this.#reused = false;
        this.#socket = undefined;
        queueMicrotask(() => replay.upstream.replay(replay, conn, this));
        return;
      }
      this.#resolve = this.#reject = undefined;
      reject(this.#cancel.reason ?? upstreamFailure(err, this.#address, this.#connectTimeout));
      return;
    }
    // The response had started: the body stream carries the failure to whoever is reading it.
    this.#body?.destroy(
      this.#cancel.reason ?? new ProxyError('UR', `upstream ${this.#address} reset mid-response: ${err.message}`, { endpoint: this.#address, cause: err }),
    );
  }
}

/**
 * A socket close or reset before any byte of the response was read: undici's 'other side closed' / 'closed'
 * (UND_ERR_SOCKET) or ECONNRESET / EPIPE, with the socket's bytesRead unchanged since the request was written
 * (undici's SocketError carries the socket's counters at the moment it failed).
 */
function isStaleClose(err: Error, socket: Socket | undefined, bytesReadAtWrite: number): boolean {
  const e = err as Error & { code?: string; socket?: { bytesRead?: number } };
  if (e.code !== 'UND_ERR_SOCKET' && e.code !== 'ECONNRESET' && e.code !== 'EPIPE') return false;
  return socket !== undefined && (e.socket?.bytesRead ?? socket.bytesRead) === bytesReadAtWrite;
}
