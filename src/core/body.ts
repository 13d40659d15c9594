// Helpers for ResponseBody (a stream or a whole Buffer), so consumers need not care which one they hold.
import { Readable } from 'node:stream';
import type { ResponseBody } from './service.js';

/** True when the body is complete in memory. */
export const isWholeBody = (body: ResponseBody): body is Buffer => body instanceof Uint8Array;

/** Drops a body nobody will read (a discarded attempt, a closed downstream): a stream is destroyed. */
export function discardBody(body: ResponseBody | null | undefined): void {
  if (body && !isWholeBody(body)) body.destroy();
}

/**
 * Runs `fn` once the body is finished with (read, failed or destroyed); at once for a whole body. `on`, not `once`:
 * a stream emits 'close' once, and once() would wrap every listener in a bound function (two allocations for each of
 * the two or three calls a proxied response gets).
 */
export function whenBodyDone(body: ResponseBody | null, fn: () => void): void {
  if (body === null || isWholeBody(body)) fn();
  else if (body.closed) queueMicrotask(fn);
  else body.on('close', fn);
}

/** The body as a stream, for consumers that pipe. */
export const bodyStream = (body: ResponseBody): Readable => (isWholeBody(body) ? Readable.from([body]) : body);
