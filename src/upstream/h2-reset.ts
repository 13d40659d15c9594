// An HTTP/2 upstream stream reset after its response head, and the code the downstream stream is reset with for it.
import http2 from 'node:http2';
import { ProxyError } from '../core/errors.js';

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR } = http2.constants;

/** The cause of a reset-after-head error: the RST_STREAM code the upstream sent. */
export class Http2StreamReset extends Error {
  constructor(readonly http2Code: number) {
    super(`RST_STREAM code ${http2Code}`);
    this.name = 'Http2StreamReset';
  }
}

/**
 * The upstream reset a stream whose response had started. node:http2 ends such a stream's readable side quietly
 * (destroyed, no 'error', no 'end' for CANCEL), which would leave a truncated body looking complete or never ending.
 */
export function resetAfterHead(address: string, code: number): ProxyError {
  const name = code === NGHTTP2_CANCEL ? 'CANCEL' : `code ${code}`;
  return new ProxyError('UR', `upstream ${address} reset the stream after the response head (${name})`, {
    endpoint: address,
    outcome: 'response-started',
    code: 'stream-reset',
    cause: new Http2StreamReset(code),
  });
}

/**
 * How a downstream HTTP/2 stream is reset when its response body failed: CANCEL when the upstream cancelled (gRPC
 * reads that as CANCELLED, as it would without the sidecar), INTERNAL_ERROR for everything else.
 */
export function downstreamResetCode(err: unknown): number {
  const cause = err instanceof ProxyError ? err.cause : undefined;
  return cause instanceof Http2StreamReset && cause.http2Code === NGHTTP2_CANCEL ? NGHTTP2_CANCEL : NGHTTP2_INTERNAL_ERROR;
}
