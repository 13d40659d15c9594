// Trace and span ids as lower-case hex, cut from a pool of random bytes refilled 4 KiB at a time (one crypto call per
// ~170 spans) and turned into hex 256 bytes at a time (one conversion per ~10 ids rather than one per id). An id is a
// slice of that hex string and keeps it alive: 512 characters, so a full export queue of spans pins little. Tests
// inject their own source.
import { randomFillSync } from 'node:crypto';

export interface IdSource {
  /** 32 hex digits, never all zero. */
  traceId(): string;
  /** 16 hex digits, never all zero. */
  spanId(): string;
}

const POOL_BYTES = 4096;
const HEX_BYTES = 256;

export function randomIds(fill: (b: Buffer) => void = randomFillSync): IdSource {
  const pool = Buffer.allocUnsafe(POOL_BYTES);
  let next = POOL_BYTES; // the pool's first byte not yet in hex
  let hex = '';
  let at = 0;
  const take = (digits: number): string => {
    for (;;) {
      if (at + digits > hex.length) {
        if (next === POOL_BYTES) {
          fill(pool);
          next = 0;
        }
        hex = pool.toString('hex', next, (next += HEX_BYTES));
        at = 0;
      }
      const id = hex.slice(at, (at += digits));
      // All-zero ids are invalid (W3C); with 64 random bits this is a formality.
      for (let i = 0; i < digits; i++) if (id.charCodeAt(i) !== 0x30) return id;
    }
  };
  return { traceId: () => take(32), spanId: () => take(16) };
}
