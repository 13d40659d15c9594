// One attempt of one request on the HTTP/1.1 upstream: from queued, through written, to the response settled.
import type { Cancellation } from '../../core/cancel.js';
import { HeaderList } from '../../core/headers.js';
import { PushedBody } from '../../core/pushed-body.js';
import type { ProxyRequest, ProxyResponse } from '../../core/service.js';
import type { Http1Connection } from './connection.js';

/** A body still buffered when the response completes is handed over whole, up to this size; more becomes a stream. */
const WHOLE_BODY_LIMIT = 64 * 1024;
const EMPTY = Buffer.alloc(0);

/**
 * The response is settled when the parser has finished with the packet that carried its head: a small response is
 * usually complete by then and is handed over as one Buffer, sparing a stream per request; otherwise its body becomes
 * a PushedBody that later packets feed, with backpressure on the socket.
 */
export class Exchange {
  readonly req: ProxyRequest;
  readonly cancel: Cancellation;
  /** Whether a stale pooled connection may be swapped for a fresh one: no request body can have been consumed. */
  replayable: boolean;
  /** The connection carrying this exchange; undefined while queued and once done. */
  conn: Http1Connection | undefined;
  #resolve: ((r: ProxyResponse) => void) | undefined;
  #reject: ((e: unknown) => void) | undefined;
  #response: ProxyResponse | undefined;
  #body: PushedBody | undefined;
  #chunks: Buffer[] | undefined;
  #chunkBytes = 0;

  constructor(req: ProxyRequest, cancel: Cancellation, resolve: (r: ProxyResponse) => void, reject: (e: unknown) => void) {
    this.req = req;
    this.cancel = cancel;
    this.replayable = req.body === null;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  /** True once a final response head arrived. */
  get hasHead(): boolean {
    return this.#response !== undefined;
  }

  onHead(status: number, raw: string[]): void {
    this.#response = { status, headers: new HeaderList(raw), body: null, trailers: undefined };
  }

  /** Returns false when the reader wants the socket paused. */
  onBody(chunk: Buffer): boolean {
    const body = this.#body;
    if (body !== undefined) return body.push(chunk);
    (this.#chunks ??= []).push(chunk);
    this.#chunkBytes += chunk.length;
    if (this.#chunkBytes > WHOLE_BODY_LIMIT) this.#settleAsStream();
    return true;
  }

  onComplete(trailers: string[] | undefined): void {
    const response = this.#response!;
    if (trailers !== undefined && trailers.length > 0) response.trailers = new HeaderList(lowerCaseNames(trailers));
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

  /** The parser is done with a packet and the response is not complete: hand it over with a streamed body. */
  afterPacket(): void {
    if (this.#response !== undefined && this.#resolve !== undefined) this.#settleAsStream();
  }

  /**
   * The attempt failed. A response nobody holds yet (no head, or a head still unsettled) is rejected, so the client
   * gets a clean 502/503 with a flag instead of a head and an abort; once handed over, the body stream carries the
   * failure to whoever reads it, so a truncated body never looks complete. A cancellation's own reason wins.
   */
  fail(beforeHead: () => Error, midResponse: () => Error): void {
    const reason = this.cancel.reason;
    const reject = this.#reject;
    if (reject !== undefined) {
      this.#resolve = this.#reject = undefined;
      this.#chunks = undefined;
      reject(reason ?? (this.#response === undefined ? beforeHead() : midResponse()));
      return;
    }
    const body = this.#body;
    if (body !== undefined && !body.complete) body.destroy(reason ?? midResponse());
  }

  #settleAsStream(): void {
    const response = this.#response!;
    const body = new PushedBody();
    // The reader wants more: resume the socket, unless it has moved on to another exchange.
    body.onDemand = () => {
      const conn = this.conn;
      if (conn !== undefined && conn.exchange === this) conn.resume();
    };
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
}

function lowerCaseNames(raw: string[]): string[] {
  for (let i = 0; i < raw.length; i += 2) raw[i] = raw[i]!.toLowerCase();
  return raw;
}
