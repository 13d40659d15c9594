// The default JSON access line written straight into the line writer's chunk, byte for byte what formatAccessLine
// returns. Building the line as a string cost a rope of some thirty pieces that Buffer.write then had to flatten and
// copy again: measured in a loop, format plus encode took 2.5 µs a line, about a third of it in that flattening. Here
// the free-text fields are scanned once and copied as they are scanned (a character that needs escaping, or any
// non-ASCII one, falls back to JSON.stringify for that field alone), and the runs of rarely changing fields are
// kept encoded.
import type { RequestContext } from '../core/service.js';
import type { AccessRecord } from './access-log.js';
import { isoNow, jsonString, millis, quoted, redactQuery } from './access-fields.js';

/** What the encoder reads: the access record's fields without the header lists (the default line logs no headers). */
export type EncodedRecord = Omit<AccessRecord, 'requestHeaders' | 'responseHeaders'>;

/** Bytes of the line's fixed text (keys, punctuation, numbers), with room to spare. */
const FIXED_BYTES = 768;

/** A piece of text kept with its UTF-8 bytes, rebuilt when its inputs change. */
interface Piece {
  text: string;
  bytes: Buffer;
}
const piece = (text: string): Piece => ({ text, bytes: Buffer.from(text, 'utf8') });

// Inputs start undefined (no string equals it), so the first line builds each piece whatever its values.
const head = { listener: undefined as string | undefined, p: piece('') };
const target = { route: undefined as string | undefined, cluster: undefined as string | undefined, endpoint: undefined as string | undefined, p: piece('') };
const peer = { address: undefined as string | undefined, p: piece('') };
const ids = { peer: undefined as string | undefined, upstream: undefined as string | undefined, key: undefined as string | undefined, p: piece(',"peer_identity":null,"upstream_identity":null,"api_key":null}\n') };
const NO_FLAG = piece(',"response_flag":null,"error":null,"upstream_outcome":null,"upstream_cause":null');
const TIME = piece('{"time":"');
const METHOD = piece(',"method":');
const AUTHORITY = piece(',"authority":');
const PATH = piece(',"path":');
const PROTOCOL = piece(',"protocol":"');
const STATUS = piece('","status":');
const GRPC = piece(',"grpc_status":');
const BYTES_IN = piece(',"bytes_in":');
const BYTES_OUT = piece(',"bytes_out":');
const DURATION = piece(',"duration_ms":');
const HOP = piece(',"hop_payload":');
const TRACE = piece(',"trace_id":"');
const SPAN = piece('","span_id":"');
const QUOTE = 0x22;

function put(buf: Buffer, off: number, b: Buffer): number {
  buf.set(b, off);
  return off + b.length;
}

/** Text written unescaped (hex ids, protocol names, ISO times, numbers): ASCII in practice, UTF-8 if not. */
function putAscii(buf: Buffer, off: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return off + buf.write(s, off);
    buf[off + i] = c;
  }
  return off + n;
}

/** jsonString(v), written: copied while scanned; on the first character that needs escaping, jsonString writes it. */
function putJson(buf: Buffer, off: number, v: string | undefined): number {
  if (v === undefined) {
    buf[off] = 0x6e; // null
    buf[off + 1] = 0x75;
    buf[off + 2] = 0x6c;
    buf[off + 3] = 0x6c;
    return off + 4;
  }
  buf[off] = QUOTE;
  const n = v.length;
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return off + buf.write(jsonString(v), off);
    buf[off + 1 + i] = c;
  }
  buf[off + 1 + n] = QUOTE;
  return off + n + 2;
}

/** A number as String(n) writes it; integers (the common case) without a string. */
function putNumber(buf: Buffer, off: number, n: number): number {
  if (!(Number.isInteger(n) && n >= 0 && n < 1e15)) return putAscii(buf, off, String(n));
  if (n < 10) {
    buf[off] = 0x30 + n;
    return off + 1;
  }
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  for (let i = digits - 1, x = n; i >= 0; i--, x = Math.floor(x / 10)) buf[off + i] = 0x30 + (x % 10);
  return off + digits;
}

/** millis(ms) written: integer microseconds as `<ms>.<3 digits>`, without the string. */
function putMillis(buf: Buffer, off: number, ms: number): number {
  const us = Math.round(ms * 1000);
  if (!(us >= 0 && us < 1e15)) return putAscii(buf, off, millis(ms));
  const frac = us % 1000;
  off = putNumber(buf, off, (us - frac) / 1000);
  buf[off] = 0x2e; // .
  buf[off + 1] = 0x30 + Math.floor(frac / 100);
  buf[off + 2] = 0x30 + (Math.floor(frac / 10) % 10);
  buf[off + 3] = 0x30 + (frac % 10);
  return off + 4;
}

function headPiece(c: RequestContext): Buffer {
  if (c.listener !== head.listener) {
    head.listener = c.listener;
    head.p = piece(`","listener":${quoted(c.listener)},"request_id":`);
  }
  return head.p.bytes;
}

function targetPiece(c: RequestContext): Buffer {
  if (c.route !== target.route || c.cluster !== target.cluster || c.endpoint !== target.endpoint) {
    target.route = c.route;
    target.cluster = c.cluster;
    target.endpoint = c.endpoint;
    target.p = piece(`,"route":${quoted(c.route)},"cluster":${quoted(c.cluster)},"upstream":${quoted(c.endpoint)},"attempts":`);
  }
  return target.p.bytes;
}

function peerPiece(c: RequestContext): Buffer {
  if (c.downstreamAddress !== peer.address) {
    peer.address = c.downstreamAddress;
    peer.p = piece(`,"downstream":${quoted(c.downstreamAddress)},"user_agent":`);
  }
  return peer.p.bytes;
}

function identityPiece(c: RequestContext): Buffer {
  const p = c.peerIdentity;
  const u = c.upstreamIdentity;
  const k = c.apiKeyName;
  if (p !== ids.peer || u !== ids.upstream || k !== ids.key) {
    ids.peer = p;
    ids.upstream = u;
    ids.key = k;
    ids.p = piece(`,"peer_identity":${quoted(p)},"upstream_identity":${quoted(u)},"api_key":${k === undefined ? 'null' : jsonString(k)}}\n`);
  }
  return ids.p.bytes;
}

/** The path as logged (credential query values masked). */
export const loggedPath = (r: EncodedRecord): string => (r.context.redactQuery === undefined ? r.path : redactQuery(r.path, r.context.redactQuery));

/**
 * Bytes the line can take at most: the fixed text, the cached pieces (bounded by the caches' inputs) and 6 bytes per
 * character of the free-text and quoted fields (a \u00XX escape; UTF-8 needs at most 3).
 */
export function encodedBound(r: EncodedRecord, path: string): number {
  const c = r.context;
  let n = r.method.length + r.authority.length + path.length + c.requestId.length + (r.userAgent?.length ?? 0) + c.listener.length + c.route.length + c.cluster.length + c.endpoint.length + c.downstreamAddress.length;
  n += (c.error?.length ?? 0) + (c.hopPayload?.length ?? 0) + (c.traceId?.length ?? 0) + (c.spanId?.length ?? 0);
  n += (c.peerIdentity?.length ?? 0) + (c.upstreamIdentity?.length ?? 0) + (c.apiKeyName?.length ?? 0) + (c.flag?.length ?? 0) + (c.upstreamOutcome?.length ?? 0) + (c.upstreamCause?.length ?? 0);
  return FIXED_BYTES + 6 * n;
}

/**
 * Writes formatAccessLine(r) (no chosen headers) into buf at off, which has encodedBound(r, path) bytes free; returns
 * the offset after the line. `path` is loggedPath(r).
 */
export function encodeAccessLine(r: EncodedRecord, path: string, buf: Buffer, off: number): number {
  const c = r.context;
  off = put(buf, off, TIME.bytes);
  off = putAscii(buf, off, isoNow());
  off = put(buf, off, headPiece(c));
  off = putJson(buf, off, c.requestId);
  off = put(buf, off, METHOD.bytes);
  off = putJson(buf, off, r.method);
  off = put(buf, off, AUTHORITY.bytes);
  off = putJson(buf, off, r.authority);
  off = put(buf, off, PATH.bytes);
  off = putJson(buf, off, path);
  off = put(buf, off, PROTOCOL.bytes);
  off = putAscii(buf, off, c.downstreamProtocol);
  off = put(buf, off, STATUS.bytes);
  off = putNumber(buf, off, r.status);
  off = put(buf, off, GRPC.bytes);
  off = c.grpcStatus === undefined ? putAscii(buf, off, 'null') : putNumber(buf, off, c.grpcStatus);
  off = put(buf, off, BYTES_IN.bytes);
  off = putNumber(buf, off, r.bytesIn);
  off = put(buf, off, BYTES_OUT.bytes);
  off = putNumber(buf, off, r.bytesOut);
  off = put(buf, off, DURATION.bytes);
  off = putMillis(buf, off, r.durationMs);
  off = put(buf, off, targetPiece(c));
  off = putNumber(buf, off, c.attempts);
  if (c.flag === undefined && c.error === undefined) off = put(buf, off, NO_FLAG.bytes);
  else off += buf.write(`,"response_flag":${quoted(c.flag)},"error":${jsonString(c.error)},"upstream_outcome":${quoted(c.upstreamOutcome)},"upstream_cause":${quoted(c.upstreamCause)}`, off);
  off = put(buf, off, peerPiece(c));
  off = putJson(buf, off, r.userAgent);
  if (c.hopPayload !== undefined) {
    off = put(buf, off, HOP.bytes);
    off = putJson(buf, off, c.hopPayload);
  }
  if (c.traceId !== undefined) {
    off = put(buf, off, TRACE.bytes);
    off = putAscii(buf, off, c.traceId);
    off = put(buf, off, SPAN.bytes);
    off = c.spanId === undefined ? putAscii(buf, off, 'undefined') : putAscii(buf, off, c.spanId);
    buf[off++] = QUOTE;
  }
  return put(buf, off, identityPiece(c));
}
