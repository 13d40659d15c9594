// Request body limit: 413 before forwarding when Content-Length says too much; a counting stream when the length is unknown.
import { Transform, type TransformCallback } from 'node:stream';
import { ProxyError } from '../../core/errors.js';
import type { Layer } from '../../core/service.js';
import type { FilterFactory } from '../filter.js';
import type { BodyLimitConfig } from './schema.js';

export function bodyLimitLayer(limit: number): Layer {
  if (limit <= 0) return (next) => next;
  return (next) => (req) => {
    if (req.body === null) return next(req);
    if (req.contentLength > limit) {
      return Promise.reject(new ProxyError('TL', `request body of ${req.contentLength} bytes is over the route limit of ${limit} bytes`));
    }
    if (req.contentLength < 0) {
      const source = req.body;
      const limiter = new LimitStream(limit);
      source.on('error', (e) => limiter.destroy(e));
      req.body = source.pipe(limiter);
      limiter.once('error', (e) => {
        if (e instanceof ProxyError) req.cancel.abort(e);
      });
    }
    return next(req);
  };
}

class LimitStream extends Transform {
  #seen = 0;
  constructor(readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.limit) cb(new ProxyError('TL', `request body is over the route limit of ${this.limit} bytes`));
    else cb(null, chunk);
  }
}

/** The registered filter (`type: body_limit`); a route's max_request_body (or the listener's limit) builds the same one. */
export const bodyLimitFilter: FilterFactory<BodyLimitConfig> = {
  type: 'body_limit',
  create: (cfg) => bodyLimitLayer(cfg.max_bytes),
};
