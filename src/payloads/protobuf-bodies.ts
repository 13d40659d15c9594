// routes[].protobuf_bodies: apps speak JSON, the sidecar hop carries protobuf. Two layers per route:
// - sending (the route's cluster is `peer: sidecar`): the app's JSON request is checked against the request message
//   (400 naming the field when it does not fit, before it leaves the host) and crosses as protobuf once the far end
//   said it knows the same schema fingerprint; every hop request offers `x-sidecar-accept-pb: <fingerprint>`, and a
//   protobuf answer is decoded back to JSON for the app.
// - receiving (the request came from a sidecar): a protobuf body of our fingerprint is decoded to JSON for the app
//   (another fingerprint: 415, and the sender resends JSON); the app's JSON answer crosses back as protobuf when the
//   caller offered our fingerprint.
// A body is converted only when it comes back as the same JSON value (what the app would have seen anyway); a body
// over max_body, not JSON, or app-compressed crosses as it is. Converting needs the whole message: bounded by max_body.
import { Readable } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import type * as protobuf from 'protobufjs';
import { ProxyError } from '../core/errors.js';
import type { HeaderList } from '../core/headers.js';
import type { Layer, ProxyRequest, ProxyResponse, RequestContext } from '../core/service.js';
import { localJson } from '../filters/transcode/answers.js';
import { messageFromJson, messageToJson, nameOf, type MappingOptions } from '../filters/transcode/json-mapping.js';
import { JsonMappingError } from '../filters/transcode/wkt.js';
import type { Counter } from '../observability/metrics.js';
import { isJsonType, readBounded } from './body.js';
import { ACCEPT_PB, PB_SCHEMA, pbContentType, pbMessageType } from './headers.js';
import type { BodySchema } from './protobuf-schema.js';

export type PbOutcome = 'encoded' | 'decoded' | 'json' | 'kept_json' | 'invalid';

export interface PbStats {
  /** Bodies by side (sending, receiving), body (request, response) and outcome. */
  outcome(side: 'sending' | 'receiving', body: 'request' | 'response', outcome: PbOutcome): Counter;
  readonly mismatches: Counter;
  /** Bytes of the converted bodies as JSON and as protobuf. */
  readonly jsonBytes: Counter;
  readonly protobufBytes: Counter;
}

/** Appends to the access log's hop_payload note. */
export function notePayload(ctx: RequestContext, note: string): void {
  ctx.hopPayload = ctx.hopPayload === undefined ? note : `${ctx.hopPayload} ${note}`;
}

/** JSON text to protobuf, or undefined when the message would not come back as the same JSON value. */
function encode(type: protobuf.Type, value: unknown, enc: MappingOptions, dec: MappingOptions): Uint8Array | undefined {
  const bytes = type.encode(type.fromObject(messageFromJson(type, value, enc))).finish();
  const back = messageToJson(type, type.decode(bytes) as unknown as Record<string, unknown>, dec);
  return isDeepStrictEqual(back, value) ? bytes : undefined;
}

function decode(type: protobuf.Type, bytes: Uint8Array, dec: MappingOptions): Buffer {
  const json = messageToJson(type, type.decode(bytes) as unknown as Record<string, unknown>, dec);
  return Buffer.from(JSON.stringify(json));
}

function setBody(h: HeaderList, contentType: string, length: number): void {
  h.remove('transfer-encoding');
  h.set('content-type', contentType);
  h.set('content-length', String(length));
}

function replaceRequestBody(req: ProxyRequest, body: Buffer | Uint8Array, contentType: string): void {
  setBody(req.headers, contentType, body.length);
  req.body = Readable.from([Buffer.from(body.buffer, body.byteOffset, body.length)]);
  req.contentLength = body.length;
}

/** What the sending side has learnt about its far end (per route): whether it knows our fingerprint. */
interface FarEnd {
  knows: boolean;
  /** The last mismatching fingerprint reported, so a mismatch is logged once per change, counted every time. */
  lastMismatch: string | undefined;
}

/** The sending side (route toward a `peer: sidecar` cluster). */
export function sendingLayer(s: BodySchema, stats: PbStats): Layer {
  const far: FarEnd = { knows: false, lastMismatch: undefined };
  return (next) => async (req) => {
    const h = req.headers;
    h.remove(PB_SCHEMA);
    h.remove(ACCEPT_PB);
    if (req.tunnel !== undefined) return next(req);
    let json: { text: Buffer; contentType: string } | undefined;
    let encoded = false;
    const type = s.request;
    const ct = h.get('content-type');
    if (type !== undefined && req.body !== null && isJsonType(ct) && !h.has('content-encoding')) {
      const read = await readBounded(req.body, req.contentLength, s.limit);
      if ('over' in read) {
        req.body = read.over;
        stats.outcome('sending', 'request', 'kept_json').inc();
      } else if (read.whole.length > 0) {
        let bytes: Uint8Array | undefined;
        try {
          bytes = encode(type, JSON.parse(read.whole.toString('utf8')) as unknown, s.encodeOptions, s.decodeOptions);
        } catch (err) {
          stats.outcome('sending', 'request', 'invalid').inc();
          const why = err instanceof JsonMappingError ? err.message : err instanceof SyntaxError ? `the body is not valid JSON (${err.message})` : `field value out of range (${(err as Error).message})`;
          return localJson(req.context, new ProxyError('DPE', `request body does not fit ${type.fullName.slice(1)}: ${why}`));
        }
        json = { text: read.whole, contentType: ct ?? 'application/json' };
        if (bytes !== undefined && far.knows) {
          replaceRequestBody(req, bytes, pbContentType(nameOf(type)));
          h.set(PB_SCHEMA, s.fingerprint);
          encoded = true;
          stats.outcome('sending', 'request', 'encoded').inc();
          stats.jsonBytes.inc(read.whole.length);
          stats.protobufBytes.inc(bytes.length);
          notePayload(req.context, 'pb:req');
        } else {
          replaceRequestBody(req, read.whole, json.contentType);
          stats.outcome('sending', 'request', bytes === undefined ? 'kept_json' : 'json').inc();
        }
      }
    }
    h.set(ACCEPT_PB, s.fingerprint);
    let res = await next(req);
    const farSchema = res.headers.get(PB_SCHEMA);
    learn(far, farSchema, s, stats, req.context);
    if (encoded && res.status === 415 && farSchema !== s.fingerprint && json !== undefined) {
      // The far end does not know our schema (it changed since it said so): the same request again, as JSON.
      drain(res);
      h.remove(PB_SCHEMA);
      replaceRequestBody(req, json.text, json.contentType);
      stats.outcome('sending', 'request', 'json').inc();
      notePayload(req.context, 'resent-as-json');
      res = await next(req);
      learn(far, res.headers.get(PB_SCHEMA), s, stats, req.context);
    }
    res.headers.remove(PB_SCHEMA);
    const rtype = s.response;
    const mt = pbMessageType(res.headers.get('content-type'));
    if (mt === undefined || rtype === undefined || res.body === null) return res;
    if (mt !== nameOf(rtype).slice(1) || farSchema !== s.fingerprint) return localJson(req.context, new ProxyError('UPE', `the far sidecar answered protobuf ${mt} with schema ${farSchema ?? '(none)'}; this route expects ${rtype.fullName.slice(1)} with schema ${s.fingerprint}`), true);
    return decodeResponse(res, rtype, s, stats, req.context);
  };
}

function learn(far: FarEnd, farSchema: string | undefined, s: BodySchema, stats: PbStats, ctx: RequestContext): void {
  if (farSchema === s.fingerprint) {
    far.knows = true;
    far.lastMismatch = undefined;
    return;
  }
  far.knows = false;
  if (farSchema === undefined) return; // a far end without protobuf_bodies here: JSON, nothing wrong
  stats.mismatches.inc();
  notePayload(ctx, `schema-mismatch:${farSchema}!=${s.fingerprint}`);
  if (far.lastMismatch !== farSchema) {
    far.lastMismatch = farSchema;
    process.emitWarning(`protobuf_bodies schema mismatch on route ${ctx.route}: the far sidecar knows ${farSchema}, this one ${s.fingerprint}; bodies cross as JSON`, { code: 'SIDECAR_PB_SCHEMA_MISMATCH' });
  }
}

function drain(res: ProxyResponse): void {
  const b = res.body;
  if (b !== null && !(b instanceof Uint8Array)) b.resume();
}

async function decodeResponse(res: ProxyResponse, type: protobuf.Type, s: BodySchema, stats: PbStats, ctx: RequestContext): Promise<ProxyResponse> {
  const read = await readBounded(res.body!, Number(res.headers.get('content-length') ?? -1), s.limit);
  if ('over' in read) {
    read.over.destroy();
    return localJson(ctx, new ProxyError('UPE', `protobuf answer over protobuf_bodies.max_body (${s.limit} bytes)`), true);
  }
  let out: Buffer;
  try {
    out = decode(type, read.whole, s.decodeOptions);
  } catch (err) {
    return localJson(ctx, new ProxyError('UPE', `protobuf answer does not decode as ${type.fullName.slice(1)}: ${(err as Error).message}`), true);
  }
  stats.outcome('sending', 'response', 'decoded').inc();
  stats.protobufBytes.inc(read.whole.length);
  stats.jsonBytes.inc(out.length);
  notePayload(ctx, 'pb:res');
  setBody(res.headers, 'application/json', out.length);
  res.body = out;
  return res;
}

/** The receiving side (a request from another sidecar). */
export function receivingLayer(s: BodySchema, stats: PbStats): Layer {
  return (next) => async (req) => {
    const h = req.headers;
    const offered = h.get(ACCEPT_PB);
    const bodySchema = h.get(PB_SCHEMA);
    h.remove(ACCEPT_PB);
    h.remove(PB_SCHEMA);
    if (req.tunnel !== undefined || !req.context.fromSidecar) return next(req);
    const mt = pbMessageType(h.get('content-type'));
    if (mt !== undefined && req.body !== null) {
      const type = s.request;
      if (type === undefined || bodySchema !== s.fingerprint || mt !== nameOf(type).slice(1)) {
        req.body.resume();
        stats.mismatches.inc();
        notePayload(req.context, `schema-mismatch:${bodySchema ?? '(none)'}!=${s.fingerprint}`);
        const answer = localJson(req.context, new ProxyError('DPE', `protobuf body ${mt} of schema ${bodySchema ?? '(none)'}: this sidecar knows ${s.fingerprint}; send JSON`, { status: 415 }));
        answer.headers.set(PB_SCHEMA, s.fingerprint);
        return answer;
      }
      const read = await readBounded(req.body, req.contentLength, s.limit);
      if ('over' in read) {
        read.over.destroy();
        return localJson(req.context, new ProxyError('TL', `protobuf body over protobuf_bodies.max_body (${s.limit} bytes)`, { status: 413 }));
      }
      let json: Buffer;
      try {
        json = decode(type, read.whole, s.decodeOptions);
      } catch (err) {
        return localJson(req.context, new ProxyError('DPE', `protobuf body does not decode as ${mt}: ${(err as Error).message}`));
      }
      replaceRequestBody(req, json, 'application/json');
      stats.outcome('receiving', 'request', 'decoded').inc();
      stats.protobufBytes.inc(read.whole.length);
      stats.jsonBytes.inc(json.length);
      notePayload(req.context, 'pb:req');
    }
    const res = await next(req);
    if (offered === undefined) return res;
    res.headers.set(PB_SCHEMA, s.fingerprint);
    if (offered !== s.fingerprint) {
      stats.mismatches.inc();
      notePayload(req.context, `schema-mismatch:${offered}!=${s.fingerprint}`);
      return res;
    }
    const rtype = s.response;
    if (rtype === undefined || res.body === null || !isJsonType(res.headers.get('content-type')) || res.headers.has('content-encoding')) return res;
    const read = await readBounded(res.body, Number(res.headers.get('content-length') ?? -1), s.limit);
    if ('over' in read) {
      res.body = read.over;
      stats.outcome('receiving', 'response', 'kept_json').inc();
      return res;
    }
    res.body = read.whole;
    let bytes: Uint8Array | undefined;
    try {
      bytes = read.whole.length === 0 ? undefined : encode(rtype, JSON.parse(read.whole.toString('utf8')) as unknown, s.encodeOptions, s.decodeOptions);
    } catch {
      bytes = undefined; // an answer that is not the message (an error body, say) crosses as JSON
    }
    if (bytes === undefined) {
      stats.outcome('receiving', 'response', 'kept_json').inc();
      return res;
    }
    stats.outcome('receiving', 'response', 'encoded').inc();
    stats.jsonBytes.inc(read.whole.length);
    stats.protobufBytes.inc(bytes.length);
    notePayload(req.context, 'pb:res');
    setBody(res.headers, pbContentType(nameOf(rtype)), bytes.length);
    res.body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    return res;
  };
}
