// Trace and span ids as lower-case hex, cut from a pool of random bytes refilled 4 KiB at a time and turned into hex
// in one call (one crypto call and one hex conversion per ~170 spans, rather than one of each per id). Tests inject
// their own source.
import { randomFillSync } from 'node:crypto';

export interface IdSource {
  /** 32 hex digits, never all zero. */
  traceId(): string;
  /** 16 hex digits, never all zero. */
  spanId(): string;
}

const POOL_BYTES = 4096;

export function randomIds(fill: (b: Buffer) => void = randomFillSync): IdSource {
  const pool = Buffer.allocUnsafe(POOL_BYTES);
  let hex = '';
  let at = hex.length;
  const take = (digits: number): string => {
    for (;;) {
      if (at + digits > hex.length) {
        fill(pool);
        hex = pool.toString('hex');
        at = 0;
      }
      const id = hex.slice(at, (at += digits));
      // All-zero ids are invalid (W3C); with 64 random bits this is a formality.
      for (let i = 0; i < digits; i++) if (id.charCodeAt(i) !== 0x30) return id;
    }
  };
  return { traceId: () => take(32), spanId: () => take(16) };
}
