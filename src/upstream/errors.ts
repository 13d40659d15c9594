// Maps socket and nghttp2 errors to a response flag and a sentence that says what happened.
import { ProxyError } from '../core/errors.js';

interface ErrLike {
  code?: string;
  message?: string;
}

/** Translates a failure that happened before any response byte arrived. */
export function upstreamFailure(err: unknown, address: string, connectTimeout: number): ProxyError {
  if (err instanceof ProxyError) return err;
  const e = (err ?? {}) as ErrLike;
  const code = e.code ?? '';
  const opts = { endpoint: address, cause: err };
  switch (code) {
    case 'ECONNREFUSED':
      return new ProxyError('UF', `upstream connect refused by ${address}`, opts);
    case 'ETIMEDOUT':
      return new ProxyError('UF', `upstream connect timeout to ${address} after ${connectTimeout}ms`, { ...opts, status: 504 });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ProxyError('UF', `cannot resolve upstream ${address} (${code})`, opts);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return new ProxyError('UF', `upstream ${address} unreachable (${code})`, opts);
    case 'ERR_HTTP2_PROTOCOL_ERROR':
      return new ProxyError('UPE', `upstream ${address} sent an invalid response: ${e.message ?? code}`, opts);
    case 'ERR_HTTP2_STREAM_ERROR':
      return /REFUSED_STREAM/.test(e.message ?? '')
        ? new ProxyError('UC', `upstream ${address} refused the stream`, opts)
        : new ProxyError('UR', `upstream ${address} reset the stream: ${e.message ?? code}`, opts);
    default:
      return new ProxyError('UC', `upstream connection to ${address} closed before the response: ${e.message || code || 'reset'}`, opts);
  }
}
