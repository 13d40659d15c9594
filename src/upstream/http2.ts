// HTTP/2 cleartext (prior knowledge) upstream: a few multiplexed sessions per endpoint, opened on demand.
import http2 from 'node:http2';
import type { Cancellation } from '../core/cancel.js';
import { systemClock } from '../core/clock.js';
import { ProxyError } from '../core/errors.js';
import { HeaderList } from '../core/headers.js';
import type { ProxyRequest, ProxyResponse } from '../core/service.js';
import { forwardDeadline } from '../policies/timeout/deadline.js';
import { upstreamFailure } from './errors.js';
import type { Upstream, UpstreamOptions } from './upstream.js';

const { NGHTTP2_CANCEL } = http2.constants;

interface Session {
  readonly session: http2.ClientHttp2Session;
  /** Resolves when the connection is up; rejects on connect failure or timeout. */
  readonly ready: Promise<void>;
  active: number;
}

export class Http2Upstream implements Upstream {
  readonly address: string;
  readonly #opts: UpstreamOptions;
  readonly #sessions: Session[] = [];
  #closed = false;

  constructor(opts: UpstreamOptions) {
    this.address = opts.address;
    this.#opts = opts;
  }

  get connections(): number {
    return this.#sessions.length;
  }

  async request(req: ProxyRequest, cancel: Cancellation): Promise<ProxyResponse> {
    if (this.#closed) throw new ProxyError('UC', `upstream pool for ${this.address} is closed`, { endpoint: this.address });
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
        reject(upstreamFailure(err, this.address, this.#opts.connectTimeout));
        return;
      }
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
        stream.destroy(new ProxyError('UT', `upstream ${this.address} stream idle timeout`, { endpoint: this.address }));
      });
      stream.once('response', (h) => {
        const status = Number(h[':status']);
        if (status < 200) return;
        settled = true;
        const response: ProxyResponse = { status, headers: headersFrom(h), body: stream, trailers: undefined };
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
          reject(upstreamFailure(stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM ? refused() : new Error(`stream closed (code ${stream.rstCode})`), this.address, this.#opts.connectTimeout));
        }
      });
      stream.on('error', (err) => {
        if (!settled) {
          settled = true;
          reject(cancel.reason ?? upstreamFailure(err, this.address, this.#opts.connectTimeout));
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

  #pick(): Session {
    let best: Session | undefined;
    for (const s of this.#sessions) {
      const max = s.session.remoteSettings?.maxConcurrentStreams ?? 100;
      if (s.session.closed || s.session.destroyed || s.active >= max) continue;
      if (!best || s.active < best.active) best = s;
    }
    if (best && (best.active === 0 || this.#sessions.length >= this.#opts.maxConnections)) return best;
    if (this.#sessions.length < this.#opts.maxConnections || !best) return this.#open();
    return best;
  }

  #open(): Session {
    const session = http2.connect(`http://${this.address}`, { peerMaxConcurrentStreams: 1000 });
    const timeout = this.#opts.connectTimeout;
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        session.destroy();
        reject(upstreamFailure(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' }), this.address, timeout));
      }, timeout);
      session.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      session.once('error', (err) => {
        clearTimeout(timer);
        reject(upstreamFailure(err, this.address, timeout));
      });
    });
    ready.catch(() => {}); // observed by request(); avoid an unhandled rejection when nobody waits
    const entry: Session = { session, ready, active: 0 };
    this.#sessions.push(entry);
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

const refused = (): Error => Object.assign(new Error('REFUSED_STREAM'), { code: 'ERR_HTTP2_STREAM_ERROR' });

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
