// The transcode filter: a JSON/REST request that matches one of the route's google.api.http bindings goes upstream as a
// gRPC call (one framed message), and the gRPC answer comes back as JSON (a streamed array or NDJSON for server
// streaming). Only the routes that configure it carry it; everything it needs is compiled when the route is built.
import { Readable } from 'node:stream';
import { ProxyError } from '../../core/errors.js';
import type { Layer, ProxyRequest, ProxyResponse } from '../../core/service.js';
import { localJson } from './answers.js';
import type { FilterFactory } from '../filter.js';
import type { Binding } from './bindings.js';
import { compileTranscoder, type CompiledTranscoder } from './compile.js';
import { frame } from './grpc-frame.js';
import { matchTemplate, splitPath } from './path-template.js';
import { encodeRequest } from './request.js';
import { relayResponse } from './response.js';
import type { TranscodeConfig } from './schema.js';
import { JsonMappingError } from './wkt.js';

/** The registered filter (`type: transcode`): compiles the .proto files once, when the route is built. */
export const transcodeFilter: FilterFactory<TranscodeConfig> = {
  type: 'transcode',
  create: (cfg) => transcodeLayer(compileTranscoder(cfg)),
};

export interface Matched {
  readonly binding: Binding;
  readonly vars: Map<string, string>;
}

/** The binding a method and path select (the most specific first), or undefined. */
export function findBinding(t: CompiledTranscoder, method: string, pathname: string): Matched | undefined {
  const list = t.byVerb.get(method);
  if (!list) return undefined;
  const segments = splitPath(pathname);
  for (const binding of list) {
    const vars = matchTemplate(binding.template, segments);
    if (vars) return { binding, vars };
  }
  return undefined;
}

export function transcodeLayer(t: CompiledTranscoder): Layer {
  const limit = t.config.max_request_body;
  return (next) => async (req) => {
    // An Upgrade or CONNECT is no JSON call, and a gRPC client needs no transcoding: both go on as the route takes them.
    if (req.tunnel !== undefined || req.headers.get('content-type')?.startsWith('application/grpc')) return next(req);
    const q = req.path.indexOf('?');
    const pathname = q < 0 ? req.path : req.path.slice(0, q);
    const match = findBinding(t, req.method, pathname);
    if (!match) {
      if (t.config.pass_through_unmatched) return next(req);
      req.body?.resume();
      return localJson(req.context, new ProxyError('NR', `no gRPC method of this route is bound to ${req.method} ${pathname}`));
    }
    let message: Uint8Array;
    try {
      const body = await readJsonBody(req, limit);
      message = encodeRequest(match.binding, match.vars, new URLSearchParams(q < 0 ? '' : req.path.slice(q + 1)), body, t.mapping);
    } catch (err) {
      if (err instanceof JsonMappingError) return localJson(req.context, new ProxyError('DPE', `request does not fit ${match.binding.method.request.fullName.slice(1)}: ${err.message}`));
      return localJson(req.context, err);
    }
    const accept = req.headers.get('accept') ?? '';
    toGrpc(req, match.binding, message);
    let res: ProxyResponse;
    try {
      res = await next(req);
    } catch (err) {
      return localJson(req.context, err, true);
    }
    return relayResponse(t, match.binding, res, req, accept.includes('application/x-ndjson'));
  };
}

/** The request, rewritten in place into the gRPC call: POST /pkg.Service/Method with one framed message. */
function toGrpc(req: ProxyRequest, b: Binding, message: Uint8Array): void {
  const framed = frame(message);
  req.method = 'POST';
  req.path = b.method.grpcPath;
  const h = req.headers;
  for (const name of ['content-length', 'transfer-encoding', 'content-encoding', 'accept-encoding', 'expect']) h.remove(name);
  h.set('content-type', 'application/grpc');
  h.set('te', 'trailers');
  h.set('grpc-accept-encoding', 'identity');
  h.set('content-length', String(framed.length));
  req.body = Readable.from([framed]);
  req.contentLength = framed.length;
  req.trailers = undefined;
}

/** The whole JSON body (a JSON body is parsed whole, so it is buffered up to the limit); undefined when empty. */
async function readJsonBody(req: ProxyRequest, limit: number): Promise<unknown> {
  const body = req.body;
  if (body === null) return undefined;
  if (limit > 0 && req.contentLength > limit) {
    body.resume();
    throw new ProxyError('TL', `request body of ${req.contentLength} bytes is over the transcoder limit of ${limit} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (limit > 0 && size > limit) {
      body.destroy();
      throw new ProxyError('TL', `request body is over the transcoder limit of ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks, size).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new JsonMappingError('', `the body is not valid JSON (${(e as Error).message})`);
  }
}

