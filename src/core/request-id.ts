// Request ids: random (version 4) UUIDs. crypto.randomUUID() builds its answer from 20 concatenated pieces; a tree of
// strings that every later use (the upstream head, the access log, response headers) has to walk and copy. This
// writes the 36 characters into a scratch buffer and reads them back as one flat string, from a pool of random bytes.
import { randomFillSync } from 'node:crypto';

const POOL_IDS = 256;
const pool = Buffer.allocUnsafe(16 * POOL_IDS);
let next = POOL_IDS;
const scratch = Buffer.allocUnsafe(36);
const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** Byte offsets of the 16 random bytes' two hex digits in xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx. */
const AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
scratch[8] = scratch[13] = scratch[18] = scratch[23] = 0x2d; // '-'

export function newRequestId(): string {
  if (next === POOL_IDS) {
    randomFillSync(pool);
    next = 0;
  }
  const base = 16 * next++;
  for (let i = 0; i < 16; i++) {
    let b = pool[base + i]!;
    if (i === 6) b = (b & 0x0f) | 0x40; // version 4
    else if (i === 8) b = (b & 0x3f) | 0x80; // RFC 9562 variant
    const at = AT[i]!;
    scratch[at] = HEX[b >> 4]!;
    scratch[at + 1] = HEX[b & 0x0f]!;
  }
  return scratch.toString('latin1', 0, 36);
}
