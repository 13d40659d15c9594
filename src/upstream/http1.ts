// HTTP/1.1 upstream: an undici Pool per endpoint, driven through the low-level dispatch handler to avoid per-request wrappers.
import { createRequire } from 'node:module';
import type { Dispatcher, Pool as PoolType } from 'undici';

// undici's index loads fetch, WebSocket, caches and more (about 9 MiB of RSS); the proxy needs only the Pool.
const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof PoolType;
import type { Cancellation } from '../core/cancel.js';
import { ProxyError } from '../core/errors.js';
import { HeaderList } from '../core/headers.js';
import type { ProxyRequest, ProxyResponse } from '../core/service.js';
import { PushedBody } from '../core/pushed-body.js';
import { upstreamFailure } from './errors.js';
import type { Upstream, UpstreamOptions } from './upstream.js';

export class Http1Upstream implements Upstream {
  readonly address: string;
  readonly #pool: PoolType;
  readonly #opts: UpstreamOptions;

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
    });
  }

  get connections(): number {
    return this.#pool.stats.connected;
  }

  request(req: ProxyRequest, cancel: Cancellation): Promise<ProxyResponse> {
    return new Promise<ProxyResponse>((resolve, reject) => {
      const handler = new ResponseHandler(resolve, reject, cancel, this.address, this.#opts.connectTimeout);
      this.#pool.dispatch(
        {
          path: req.path,
          method: req.method,
          headers: withHost(req),
          body: req.body,
          blocking: false,
        } as Dispatcher.DispatchOptions,
        handler,
      );
    });
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}

function withHost(req: ProxyRequest): string[] {
  // undici takes the Host from the headers when present; the authority is authoritative.
  req.headers.set('host', req.authority);
  return req.headers.raw;
}

/** undici's callback handler: the first callbacks settle the promise, later ones feed the body stream. */
class ResponseHandler implements Dispatcher.DispatchHandler {
  #resolve: ((r: ProxyResponse) => void) | undefined;
  #reject: ((e: unknown) => void) | undefined;
  #body: PushedBody | undefined;
  #response: ProxyResponse | undefined;
  readonly #cancel: Cancellation;
  readonly #address: string;
  readonly #connectTimeout: number;

  constructor(
    resolve: (r: ProxyResponse) => void,
    reject: (e: unknown) => void,
    cancel: Cancellation,
    address: string,
    connectTimeout: number,
  ) {
    this.#resolve = resolve;
    this.#reject = reject;
    this.#cancel = cancel;
    this.#address = address;
    this.#connectTimeout = connectTimeout;
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.#cancel.aborted) abort(this.#cancel.reason);
    else this.#cancel.onAbort(abort);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx informational: the proxy answers Expect itself
    const raw: string[] = new Array<string>(rawHeaders.length);
    for (let i = 0; i < rawHeaders.length; i += 2) {
      raw[i] = rawHeaders[i]!.toString('latin1').toLowerCase();
      raw[i + 1] = rawHeaders[i + 1]!.toString('latin1');
    }
    const body = new PushedBody();
    body.onDemand = resume;
    this.#body = body;
    const response: ProxyResponse = { status: statusCode, headers: new HeaderList(raw), body, trailers: undefined };
    this.#response = response;
    const resolve = this.#resolve!;
    this.#resolve = this.#reject = undefined;
    resolve(response);
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.#body!.push(chunk);
  }

  onComplete(trailers: string[] | Buffer[] | null): void {
    if (trailers && trailers.length && this.#response) {
      const raw: string[] = [];
      for (let i = 0; i < trailers.length; i += 2) raw.push(String(trailers[i]).toLowerCase(), String(trailers[i + 1]));
      this.#response.trailers = new HeaderList(raw);
    }
    this.#body!.finish();
  }

  onError(err: Error): void {
    const reject = this.#reject;
    if (reject) {
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
