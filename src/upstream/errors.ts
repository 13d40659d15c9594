// Maps socket, undici and nghttp2 errors to a response flag and a sentence that says what happened.
import { ProxyError } from '../core/errors.js';

interface ErrLike {
  code?: string;
  message?: string;
}

/** Translates a failure that happened before any response byte arrived. */
export function upstreamFailure(err: unknown, address: string, connectTimeout: number): ProxyError {
  if (err instanceof ProxyError) return err;
  const e = (err ?? {}) as ErrLike & { name?: string };
  // undici's HTTPParserError carries no usable code in v7: recognise it by name.
  const code = e.code ?? (e.name === 'HTTPParserError' ? 'UND_ERR_INFO' : '');
  const opts = { endpoint: address, cause: err };
  switch (code) {
    case 'ECONNREFUSED':
      return new ProxyError('UF', `upstream connect refused by ${address}`, opts);
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return new ProxyError('UF', `upstream connect timeout to ${address} after ${connectTimeout}ms`, { ...opts, status: 504 });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ProxyError('UF', `cannot resolve upstream ${address} (${code})`, opts);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return new ProxyError('UF', `upstream ${address} unreachable (${code})`, opts);
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new ProxyError('UT', `upstream ${address} sent no response headers in time`, opts);
    case 'UND_ERR_BODY_TIMEOUT':
      return new ProxyError('UT', `upstream ${address} stream idle timeout`, opts);
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_STATUS':
    case 'HPE_INVALID_VERSION':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'UND_ERR_INFO':
    case 'ERR_HTTP2_PROTOCOL_ERROR':
      return new ProxyError('UPE', `upstream ${address} sent an invalid response: ${e.message ?? code}`, opts);
    case 'ERR_HTTP2_STREAM_ERROR':
      return /REFUSED_STREAM/.test(e.message ?? '')
        ? new ProxyError('UC', `upstream ${address} refused the stream`, opts)
        : new ProxyError('UR', `upstream ${address} reset the stream: ${e.message ?? code}`, opts);
    case 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH':
      return new ProxyError('DPE', `request body length does not match content-length`, { ...opts, status: 400 });
    default:
      return new ProxyError('UC', `upstream connection to ${address} closed before the response: ${e.message || code || 'reset'}`, opts);
  }
}
