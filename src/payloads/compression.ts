// routes[].hop_compression: bodies cross the sidecar hop compressed (zstd, brotli, gzip from node:zlib), streaming,
// and the receiving sidecar decompresses before its app, so apps never see it. Negotiated per hop:
// - the sending side offers `x-sidecar-accept-encoding` on every request and compresses request bodies only once the
//   far end's answers said which encodings it decodes;
// - the receiving side compresses an answer for a caller that offered one of its encodings.
// Only compressible content types, bodies of unknown length or at least min_bytes, and never a body that already has
// a content-encoding (the app compressed it: it passes as it is). The hop's own encoding is `x-sidecar-encoding`.
import { PassThrough, pipeline, type Readable, type Transform } from 'node:stream';
import zlib from 'node:zlib';
import { bodyStream } from '../core/body.js';
import { HeaderList } from '../core/headers.js';
import type { Layer, ProxyRequest, ProxyResponse } from '../core/service.js';
import type { Counter } from '../observability/metrics.js';
import { ACCEPT_ENCODING, HOP_ENCODING } from './headers.js';
import { notePayload } from './protobuf-bodies.js';
import type { HopAlgorithm, HopCompressionConfig } from './schema.js';

type ZlibWithZstd = typeof zlib & {
  createZstdCompress?: (o?: { params?: Record<number, number> }) => Transform;
  createZstdDecompress?: () => Transform;
  constants: typeof zlib.constants & { ZSTD_c_compressionLevel?: number };
};
const z = zlib as ZlibWithZstd;

/** Whether this runtime can do an encoding (zstd needs zlib.createZstdCompress, Node 22.15 / 23.8 and later). */
export const available = (a: HopAlgorithm): boolean => a !== 'zstd' || (typeof z.createZstdCompress === 'function' && typeof z.createZstdDecompress === 'function');

export function compressor(a: HopAlgorithm, level: number): Transform {
  switch (a) {
    case 'gzip':
      return zlib.createGzip({ level: Math.min(level, 9) });
    case 'br':
      return zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: level } });
    case 'zstd':
      return z.createZstdCompress!({ params: { [z.constants.ZSTD_c_compressionLevel ?? 100]: level } });
  }
}

export function decompressor(a: HopAlgorithm): Transform {
  switch (a) {
    case 'gzip':
      return zlib.createGunzip();
    case 'br':
      return zlib.createBrotliDecompress();
    case 'zstd':
      return z.createZstdDecompress!();
  }
}

const parseList = (v: string | undefined): string[] => (v === undefined ? [] : v.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== ''));

export interface CompressionStats {
  /** Bytes by algorithm, direction (compress, decompress) and stage (in: before, out: after). */
  bytes(algorithm: HopAlgorithm, direction: 'compress' | 'decompress', stage: 'in' | 'out'): Counter;
}

/** A body through a zlib transform, streamed, counting bytes before and after. Errors destroy the result. */
function through(body: Readable, t: Transform, before: Counter, after: Counter): Readable {
  const out = new PassThrough();
  body.on('data', (c: Buffer) => before.inc(c.length));
  t.on('data', (c: Buffer) => after.inc(c.length));
  pipeline(body, t, out, () => undefined);
  return out;
}

interface Compiled {
  readonly algorithms: readonly HopAlgorithm[];
  readonly offer: string;
  readonly min: number;
  readonly types: readonly string[];
  readonly level: number;
}

export function compileCompression(cfg: HopCompressionConfig): Compiled {
  const algorithms = cfg.algorithms.filter(available);
  return { algorithms, offer: algorithms.join(', '), min: cfg.min_bytes, types: cfg.content_types.map((t) => t.toLowerCase()), level: cfg.level };
}

function compressible(c: Compiled, h: HeaderList, length: number): boolean {
  if (h.has('content-encoding') || h.has(HOP_ENCODING)) return false;
  if (length >= 0 && length < c.min) return false;
  const ct = (h.get('content-type') ?? '').toLowerCase();
  return ct !== '' && c.types.some((t) => ct.startsWith(t));
}

const pick = (c: Compiled, theirs: readonly string[]): HopAlgorithm | undefined => c.algorithms.find((a) => theirs.includes(a));

const declaredLength = (h: HeaderList): number => {
  const v = h.get('content-length');
  return v === undefined ? -1 : Number(v);
};

function compressRequest(req: ProxyRequest, a: HopAlgorithm, c: Compiled, stats: CompressionStats): void {
  req.body = through(req.body!, compressor(a, c.level), stats.bytes(a, 'compress', 'in'), stats.bytes(a, 'compress', 'out'));
  req.headers.remove('content-length');
  req.headers.set(HOP_ENCODING, a);
  req.contentLength = -1;
}

function decompressRequest(req: ProxyRequest, a: HopAlgorithm, stats: CompressionStats): void {
  req.body = through(req.body!, decompressor(a), stats.bytes(a, 'decompress', 'in'), stats.bytes(a, 'decompress', 'out'));
  req.headers.remove('content-length');
  req.contentLength = -1;
}

function compressResponse(res: ProxyResponse, a: HopAlgorithm, c: Compiled, stats: CompressionStats): void {
  res.body = through(bodyStream(res.body!), compressor(a, c.level), stats.bytes(a, 'compress', 'in'), stats.bytes(a, 'compress', 'out'));
  res.headers.remove('content-length');
  res.headers.set(HOP_ENCODING, a);
}

function decompressResponse(res: ProxyResponse, a: HopAlgorithm, stats: CompressionStats): void {
  res.body = through(bodyStream(res.body!), decompressor(a), stats.bytes(a, 'decompress', 'in'), stats.bytes(a, 'decompress', 'out'));
  res.headers.remove('content-length');
}

const known = (v: string | undefined, c: Compiled): HopAlgorithm | undefined => (v !== undefined && (c.algorithms as readonly string[]).includes(v) ? (v as HopAlgorithm) : undefined);

/** The sending side (route toward a `peer: sidecar` cluster). */
export function sendingCompression(cfg: HopCompressionConfig, stats: CompressionStats): Layer {
  const c = compileCompression(cfg);
  // What the far end said it decodes (its last answer's x-sidecar-accept-encoding); requests go plain until then.
  let farDecodes: string[] = [];
  return (next) => async (req) => {
    const h = req.headers;
    h.remove(HOP_ENCODING);
    if (req.tunnel !== undefined || c.algorithms.length === 0) return next(req);
    h.set(ACCEPT_ENCODING, c.offer);
    const a = pick(c, farDecodes);
    if (a !== undefined && req.body !== null && compressible(c, h, req.contentLength)) {
      compressRequest(req, a, c, stats);
      notePayload(req.context, `${a}:req`);
    }
    const res = await next(req);
    const said = res.headers.get(ACCEPT_ENCODING);
    farDecodes = parseList(said);
    res.headers.remove(ACCEPT_ENCODING);
    const enc = res.headers.get(HOP_ENCODING);
    if (enc === undefined) return res;
    res.headers.remove(HOP_ENCODING);
    const alg = known(enc, c);
    if (alg === undefined || res.body === null) return res;
    decompressResponse(res, alg, stats);
    notePayload(req.context, `${alg}:res`);
    return res;
  };
}

/** The receiving side (a request from another sidecar). */
export function receivingCompression(cfg: HopCompressionConfig, stats: CompressionStats): Layer {
  const c = compileCompression(cfg);
  return (next) => async (req) => {
    const h = req.headers;
    const offered = parseList(h.get(ACCEPT_ENCODING));
    const enc = h.get(HOP_ENCODING);
    h.remove(ACCEPT_ENCODING);
    h.remove(HOP_ENCODING);
    if (req.tunnel !== undefined || !req.context.fromSidecar) return next(req);
    if (enc !== undefined && req.body !== null) {
      const alg = known(enc, c);
      if (alg === undefined) {
        req.body.resume();
        return { status: 415, headers: new HeaderList(['content-type', 'text/plain', ACCEPT_ENCODING, c.offer]), body: Buffer.from(`415 Unsupported Media Type: hop encoding ${enc} is not one of ${c.offer}\n`) };
      }
      decompressRequest(req, alg, stats);
      notePayload(req.context, `${alg}:req`);
    }
    const res = await next(req);
    if (c.algorithms.length > 0) res.headers.set(ACCEPT_ENCODING, c.offer);
    const a = pick(c, offered);
    if (a !== undefined && res.body !== null && compressible(c, res.headers, declaredLength(res.headers))) {
      compressResponse(res, a, c, stats);
      notePayload(req.context, `${a}:res`);
    }
    return res;
  };
}
