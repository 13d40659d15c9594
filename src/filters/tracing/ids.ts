// Trace and span ids as lower-case hex, from a pool of random bytes refilled 4 KiB at a time (one crypto call per
// ~170 spans rather than one per id). Tests inject their own source.
import { randomFillSync } from 'node:crypto';

export interface IdSource {
  /** 32 hex digits, never all zero. */
  traceId(): string;
  /** 16 hex digits, never all zero. */
  spanId(): string;
}

export function randomIds(fill: (b: Buffer) => void = randomFillSync): IdSource {
  const pool = Buffer.allocUnsafe(4096);
  let at = pool.length;
  const take = (n: number): string => {
    for (;;) {
      if (at + n > pool.length) {
        fill(pool);
        at = 0;
      }
      const start = at;
      at += n;
      // All-zero ids are invalid (W3C); with 64 random bits this is a formality.
      for (let i = start; i < start + n; i++) if (pool[i] !== 0) return pool.toString('hex', start, start + n);
    }
  };
  return { traceId: () => take(16), spanId: () => take(8) };
}
