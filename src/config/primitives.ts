// Value types shared by the root schema and the filters' own schemas (kept apart so filters never import the root).
import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';

/** A duration: "250ms", "5s", "1m", "1h", or a number of milliseconds. Output: milliseconds. */
export const duration = z
  .union([z.string(), z.number().nonnegative()])
  .transform((v, ctx) => {
    if (typeof v === 'number') return v;
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `invalid duration "${v}" (use e.g. 250ms, 5s, 1m, 1h)` });
      return z.NEVER;
    }
    return ms;
  })
  .meta({ description: 'Duration such as 250ms, 5s, 1m, 1h (or a number of milliseconds).' });

/** A size: "64KiB", "10MB", or a number of bytes. Output: bytes. */
export const size = z
  .union([z.string(), z.number().int().nonnegative()])
  .transform((v, ctx) => {
    if (typeof v === 'number') return v;
    const bytes = parseSize(v);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `invalid size "${v}" (use e.g. 512, 64KiB, 10MB, 1GiB)` });
      return z.NEVER;
    }
    return bytes;
  })
  .meta({ description: 'Size such as 64KiB, 10MB, 1GiB (or a number of bytes).' });

export const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid HTTP header name')
  .transform((s) => s.toLowerCase());
/** A CR or LF in a header value would split the message on the wire. */
export const headerValue = z.string().regex(/^[\t\x20-\x7e\x80-\xff]*$/, 'header values may hold visible ASCII, spaces, tabs and Latin-1 characters only: no control characters such as CR, LF or NUL, and nothing above U+00FF');
export const percent = z.number().min(0).max(100).meta({ description: 'Share of requests, 0 to 100.' });
