// gRPC length-prefixed messages: one frame out for a unary request, and an incremental reader of the response frames.

/** A message in its 5-byte-prefixed frame (uncompressed). */
export function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

export class FrameError extends Error {}

/** Reassembles frames from chunks as they arrive; each complete message comes out once. */
export class FrameReader {
  #pending: Buffer[] = [];
  #size = 0;

  constructor(readonly maxMessage: number) {}

  /** The complete messages the chunk finished; throws FrameError for a compressed or oversized frame. */
  push(chunk: Buffer): Buffer[] {
    this.#pending.push(chunk);
    this.#size += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.#size < 5) break;
      const head = this.#pending[0]!.length >= 5 ? this.#pending[0]! : this.#flatten();
      if (head[0] !== 0) throw new FrameError(head[0] === 1 ? 'the upstream sent a compressed message (the transcoder asks for identity)' : `bad gRPC frame flag ${head[0]}`);
      const len = head.readUInt32BE(1);
      if (len > this.maxMessage) throw new FrameError(`a response message of ${len} bytes is over the limit of ${this.maxMessage}`);
      if (this.#size < 5 + len) break;
      const all = this.#flatten();
      out.push(all.subarray(5, 5 + len));
      const rest = all.subarray(5 + len);
      this.#pending = rest.length ? [rest] : [];
      this.#size = rest.length;
    }
    return out;
  }

  /** Bytes of an unfinished frame left over (nonzero at the end of the body means it was cut short). */
  get leftover(): number {
    return this.#size;
  }

  #flatten(): Buffer {
    if (this.#pending.length > 1) this.#pending = [Buffer.concat(this.#pending)];
    return this.#pending[0]!;
  }
}
