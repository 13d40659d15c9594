// Bounded whole-body reads for the hop's conversions: a body is converted whole, so it is read whole only up to a
// limit; beyond it, what was read and the rest stream on unchanged (memory stays bounded, nothing is refused).
import { Readable } from 'node:stream';
import { isWholeBody } from '../core/body.js';
import type { ResponseBody } from '../core/service.js';

export type BoundedRead = { readonly whole: Buffer } | { readonly over: Readable };

/** Reads `body` whole if it fits `limit` bytes; else hands back a stream of the same bytes (read prefix + rest). */
export async function readBounded(body: ResponseBody, declared: number, limit: number): Promise<BoundedRead> {
  if (isWholeBody(body)) return body.length <= limit ? { whole: body } : { over: Readable.from([body]) };
  if (declared > limit) return { over: body };
  const chunks: Buffer[] = [];
  let size = 0;
  const it = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  for (;;) {
    const step = await it.next();
    if (step.done === true) return { whole: Buffer.concat(chunks, size) };
    const chunk = step.value;
    chunks.push(chunk);
    size += chunk.length;
    if (size > limit) return { over: Readable.from(rest(chunks, it)) };
  }
}

async function* rest(read: Buffer[], it: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield* read;
  for (;;) {
    const step = await it.next();
    if (step.done === true) return;
    yield step.value;
  }
}

/** The content type's media type, lower-case, without parameters. */
export const mediaType = (ct: string | undefined): string => (ct === undefined ? '' : (ct.split(';', 1)[0] ?? '').trim().toLowerCase());

/** A JSON media type: application/json or application/*+json. */
export const isJsonType = (ct: string | undefined): boolean => {
  const m = mediaType(ct);
  return m === 'application/json' || (m.startsWith('application/') && m.endsWith('+json'));
};
