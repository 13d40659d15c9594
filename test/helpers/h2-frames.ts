// Raw HTTP/2 frames over a plain net socket, for tests that must misbehave the way node:http2's client never would
// (thousands of HEADERS at once, RST_STREAM right after HEADERS, ignoring SETTINGS limits).
import net from 'node:net';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export const FrameType = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const ACK = 0x1;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK integer with an n-bit prefix (RFC 7541 5.1); `first` carries the pattern bits above the prefix. */
function hpackInt(value: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out.push(v);
  return out;
}

/** A header block of "literal header field without indexing — new name" entries (RFC 7541 6.2.2), no Huffman. */
export function hpackLiterals(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const bytes: number[] = [];
  for (const [name, value] of fields) {
    bytes.push(0x00);
    const n = Buffer.from(name, 'latin1');
    const v = Buffer.from(value, 'latin1');
    bytes.push(...hpackInt(n.length, 7, 0), ...n);
    bytes.push(...hpackInt(v.length, 7, 0), ...v);
  }
  return Buffer.from(bytes);
}

export function headersFrame(streamId: number, fields: ReadonlyArray<readonly [string, string]>, endStream = true): Buffer {
  return frame(FrameType.HEADERS, END_HEADERS | (endStream ? END_STREAM : 0), streamId, hpackLiterals(fields));
}

export function rstStreamFrame(streamId: number, code = 0x8 /* CANCEL */): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(FrameType.RST_STREAM, 0, streamId, p);
}

export const settingsFrame = (): Buffer => frame(FrameType.SETTINGS, 0, 0);
const settingsAck = (): Buffer => frame(FrameType.SETTINGS, ACK, 0);

/** A GET request's header fields for HEADERS frames. */
export const getFields = (path: string, authority = 'h2.test'): Array<[string, string]> => [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':path', path],
  [':authority', authority],
];

export interface ReceivedFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** A raw HTTP/2 client connection: writes frames as told, parses the frames that come back, ACKs the server's SETTINGS. */
export class RawH2 {
  readonly socket: net.Socket;
  readonly frames: ReceivedFrame[] = [];
  #buf: Buffer = Buffer.alloc(0);
  #closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, d]) : d;
      while (this.#buf.length >= 9) {
        const len = this.#buf.readUIntBE(0, 3);
        if (this.#buf.length < 9 + len) break;
        const f: ReceivedFrame = {
          type: this.#buf[3]!,
          flags: this.#buf[4]!,
          streamId: this.#buf.readUInt32BE(5) & 0x7fffffff,
          payload: this.#buf.subarray(9, 9 + len),
        };
        this.#buf = this.#buf.subarray(9 + len);
        this.frames.push(f);
        if (f.type === FrameType.SETTINGS && !(f.flags & ACK) && socket.writable) socket.write(settingsAck());
        if (f.type === FrameType.PING && !(f.flags & ACK) && socket.writable) socket.write(frame(FrameType.PING, ACK, 0, f.payload));
      }
    });
    socket.on('close', () => (this.#closed = true));
    socket.on('error', () => {});
  }

  /** Connects and writes the preface and an empty SETTINGS frame. */
  static open(port: number, host = '127.0.0.1'): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, host);
      s.once('connect', () => {
        s.off('error', reject);
        s.write(Buffer.concat([PREFACE, settingsFrame()]));
        resolve(new RawH2(s));
      });
      s.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  write(data: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** The streams that got a response HEADERS frame. */
  answered(): Set<number> {
    return new Set(this.frames.filter((f) => f.type === FrameType.HEADERS).map((f) => f.streamId));
  }

  goaway(): { lastStreamId: number; code: number } | undefined {
    const f = this.frames.find((x) => x.type === FrameType.GOAWAY);
    return f ? { lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) } : undefined;
  }
}
