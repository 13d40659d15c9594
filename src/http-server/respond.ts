// Streams a ProxyResponse body into a downstream writable with backpressure, and answers malformed requests on a raw socket.
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { ProxyError } from '../core/errors.js';
import type { ResponseFlag } from '../core/flags.js';
import { http1Bytes, renderLocal } from './local-answer.js';
import { WriteStallWatch } from './watchdog.js';

/**
 * Pipes body -> out. `end` writes trailers and ends `out`; `fail` cuts the downstream short so a client never
 * mistakes a truncated body for a whole one. With `writeTimeoutMs` > 0, `onWriteTimeout` runs when the downstream
 * takes none of the queued bytes for that long (response_write_timeout). Returns a getter for the bytes written.
 */
export function pump(
  body: Readable,
  out: Writable,
  end: () => void,
  fail: (err: Error) => void,
  writeTimeoutMs = 0,
  onWriteTimeout?: () => void,
): () => number {
  if (body.destroyed) {
    // Failed before anyone listened: its 'error' has already been emitted.
    const err = body.errored;
    fail(err instanceof Error ? err : new Error('response body destroyed before it was sent'));
    return () => 0;
  }
  let bytes = 0;
  /** Made at the first push-back only: a response that never waits for its reader costs no timer. */
  let watch: WriteStallWatch | undefined;
  const onDrain = (): void => {
    watch?.drained();
    body.resume();
  };
  out.on('drain', onDrain);
  body.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (!out.write(chunk)) {
      body.pause();
      if (writeTimeoutMs > 0 && onWriteTimeout !== undefined) (watch ??= new WriteStallWatch(out, writeTimeoutMs, onWriteTimeout)).stalled();
    }
  });
  // The watch outlives the body's end: the last bytes may still wait for the reader (it stops when `out` closes).
  body.once('end', end);
  body.once('error', (err: Error) => {
    watch?.stop();
    fail(err);
  });
  return () => bytes;
}

/** The answer when request_body_timeout runs out (408 SI). */
export const bodyTimeoutError = (ms: number): ProxyError =>
  new ProxyError('SI', `no request body bytes from the downstream for ${ms}ms while the sidecar was reading it (request_body_timeout)`);

/** The cause logged when response_write_timeout runs out (DWT). */
export const writeTimeoutCause = (ms: number): string =>
  `downstream read nothing for ${ms}ms while response bytes waited for it (response_write_timeout); response cut and upstream attempt cancelled`;

/** Answers a request the HTTP parser rejected, on the raw socket, and closes it. */
export function rejectOnSocket(socket: Socket, status: number, message: string, requestId?: string, flag: ResponseFlag = 'DPE'): void {
  if (!socket.writable || socket.destroyed) {
    socket.destroy();
    return;
  }
  socket.end(http1Bytes(renderLocal({ status, flag, cause: message, withMeaning: true, requestId, close: true })));
  // Do not wait for a client that keeps sending.
  socket.setTimeout(2000, () => socket.destroy());
}
