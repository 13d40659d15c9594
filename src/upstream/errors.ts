// Maps socket and nghttp2 errors to a response flag, a typed outcome and cause code, and a sentence that says what happened.
import { ProxyError } from '../core/errors.js';
import { describeTlsFailure, isTlsError } from '../security/tls-errors.js';

interface ErrLike {
  code?: string;
  message?: string;
}

/** Translates a failure that happened before any response byte arrived. */
export function upstreamFailure(err: unknown, address: string, connectTimeout: number): ProxyError {
  if (err instanceof ProxyError) return err;
  const e = (err ?? {}) as ErrLike;
  const code = e.code ?? '';
  const cause = err;
  const endpoint = address;
  if (isTlsError(err)) {
    return new ProxyError('UTE', `upstream ${address} TLS handshake refused: ${describeTlsFailure(err)}`, { status: 503, endpoint, cause, outcome: 'not-sent', code: 'tls-failure' });
  }
  switch (code) {
    case 'ECONNREFUSED':
      return new ProxyError('UF', `upstream connect refused by ${address}`, { endpoint, cause, outcome: 'not-sent', code: 'connect-refused' });
    case 'ETIMEDOUT':
      return connectTimeoutError(address, connectTimeout, err);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ProxyError('UF', `cannot resolve upstream ${address} (${code})`, { endpoint, cause, outcome: 'not-sent', code: 'dns-failure' });
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return new ProxyError('UF', `upstream ${address} unreachable (${code})`, { endpoint, cause, outcome: 'not-sent', code: 'unreachable' });
    case 'ERR_HTTP2_PROTOCOL_ERROR':
      return new ProxyError('UPE', `upstream ${address} sent an invalid response: ${e.message ?? code}`, { endpoint, cause, outcome: 'possibly-accepted', code: 'protocol-error' });
    case 'ERR_HTTP2_STREAM_ERROR':
      return new ProxyError('UR', `upstream ${address} reset the stream: ${e.message ?? code}`, { endpoint, cause, outcome: 'possibly-accepted', code: 'stream-reset' });
    default:
      return new ProxyError('UC', `upstream connection to ${address} closed before the response: ${e.message || code || 'reset'}`, {
        endpoint,
        cause,
        outcome: 'possibly-accepted',
        code: 'connection-closed',
      });
  }
}

/** The connect did not complete in time: nothing was sent, so any method may go to another endpoint. */
export function connectTimeoutError(address: string, ms: number, cause?: unknown): ProxyError {
  return new ProxyError('UF', `upstream connect timeout to ${address} after ${ms}ms`, { status: 504, endpoint: address, cause, outcome: 'not-sent', code: 'connect-timeout' });
}

/** HTTP/2 REFUSED_STREAM (or a stream past a GOAWAY's last id): the upstream did not process it (RFC 9113 8.7). */
export function refusedStreamError(address: string): ProxyError {
  return new ProxyError('UC', `upstream ${address} refused the stream`, { endpoint: address, outcome: 'not-sent', code: 'refused-stream' });
}

/** The pool was closed before the attempt could use it (its snapshot retired). */
export function poolClosedError(address: string): ProxyError {
  return new ProxyError('UC', `upstream pool for ${address} is closed`, { endpoint: address, outcome: 'not-sent', code: 'pool-closed' });
}

/** The same failure, known to have come after the response head (so the upstream certainly saw the request). */
export function afterHead(err: ProxyError): ProxyError {
  if (err.outcome === 'response-started' || err.outcome === undefined) return err;
  return new ProxyError(err.flag, err.message, { status: err.status, endpoint: err.endpoint, cause: err.cause, outcome: 'response-started', code: err.code });
}
