// The gRPC answer back to JSON: a unary message (or its response_body field), or a server stream written as a JSON
// array (or NDJSON) message by message as they arrive, with backpressure; a non-OK grpc-status becomes its HTTP
// status and a {code, message, details} body.
import { PassThrough, type Readable } from 'node:stream';
import { bodyStream } from '../../core/body.js';
import { ProxyError } from '../../core/errors.js';
import { HeaderList } from '../../core/headers.js';
import type { ProxyRequest, ProxyResponse } from '../../core/service.js';
import type { Binding } from './bindings.js';
import type { CompiledTranscoder } from './compile.js';
import { FrameError, FrameReader } from './grpc-frame.js';
import { jsonName, messageToJson } from './json-mapping.js';
import { codeOfHttp, decodeGrpcMessage, httpStatusOf } from './status.js';
import { jsonErrorResponse, localJson } from './answers.js';

type Obj = Record<string, unknown>;

/** Response headers that describe the gRPC framing, not the JSON the client gets. */
const GRPC_ONLY = new Set(['content-type', 'content-length', 'grpc-status', 'grpc-message', 'grpc-status-details-bin', 'grpc-encoding', 'grpc-accept-encoding', 'trailer', 'transfer-encoding']);

export async function relayResponse(t: CompiledTranscoder, b: Binding, res: ProxyResponse, req: ProxyRequest, ndjson: boolean): Promise<ProxyResponse> {
  const headers = new HeaderList();
  const raw = res.headers.raw;
  for (let i = 0; i < raw.length; i += 2) if (!GRPC_ONLY.has(raw[i]!)) headers.add(raw[i]!, raw[i + 1]!);
  const type = res.headers.get('content-type') ?? '';
  if (res.status !== 200 || !type.startsWith('application/grpc')) {
    // Not a gRPC answer (an HTTP error from something in between): its status, said in the JSON error shape.
    const code = res.headers.get('grpc-status');
    const body = res.body === null ? Buffer.alloc(0) : await readAll(bodyStream(res.body), 64 * 1024).catch(() => Buffer.alloc(0));
    const message = decodeGrpcMessage(res.headers.get('grpc-message')) || body.toString('utf8').trim().slice(0, 500) || `upstream answered HTTP ${res.status} without a gRPC status`;
    return errorAnswer(t, res.status === 200 ? 502 : res.status, code === undefined ? codeOfHttp(res.status) : Number(code), message, res.headers.get('grpc-status-details-bin'), headers);
  }
  // Trailers-only: the status is in the head and there is no message.
  const headStatus = res.headers.get('grpc-status');
  if (headStatus !== undefined && headStatus !== '0') {
    discard(res);
    return errorAnswer(t, httpStatusOf(Number(headStatus)), Number(headStatus), decodeGrpcMessage(res.headers.get('grpc-message')), res.headers.get('grpc-status-details-bin'), headers);
  }
  const source = res.body === null ? null : bodyStream(res.body);
  const reader = new FrameReader(t.config.max_response_message);
  const toJson = (m: Buffer): unknown => {
    const decoded = b.method.response.decode(m) as unknown as Obj;
    const json = messageToJson(b.method.response, decoded, t.mapping) as Obj;
    return b.responseField ? (json[t.mapping.protoNames ? b.responseField.name : jsonName(b.responseField)] ?? null) : json;
  };
  if (!b.method.serverStreaming) return unary(t, res, source, reader, toJson, headers, req);
  return streamed(t, res, source, reader, toJson, headers, req, ndjson);
}

/** The final gRPC status, from the trailers (or the head, for a body that ended without trailers). */
function finalStatus(res: ProxyResponse): { code: number; message: string; details: string | undefined } {
  const from = res.trailers?.has('grpc-status') ? res.trailers : res.headers;
  const raw = from.get('grpc-status');
  return {
    code: raw === undefined ? 2 : Number(raw),
    message: raw === undefined ? 'the upstream ended the call without a grpc-status' : decodeGrpcMessage(from.get('grpc-message')),
    details: from.get('grpc-status-details-bin'),
  };
}

async function unary(t: CompiledTranscoder, res: ProxyResponse, source: Readable | null, reader: FrameReader, toJson: (m: Buffer) => unknown, headers: HeaderList, req: ProxyRequest): Promise<ProxyResponse> {
  const messages: Buffer[] = [];
  try {
    if (source) for await (const chunk of source as AsyncIterable<Buffer>) messages.push(...reader.push(chunk));
  } catch (err) {
    source?.destroy();
    if (err instanceof FrameError) return localJson(req.context, new ProxyError('UPE', err.message));
    return localJson(req.context, err instanceof ProxyError ? err : new ProxyError('UR', `upstream stream failed: ${(err as Error).message}`));
  }
  const st = finalStatus(res);
  if (st.code !== 0) return errorAnswer(t, httpStatusOf(st.code), st.code, st.message, st.details, headers);
  if (messages.length !== 1) return localJson(req.context, new ProxyError('UPE', `a unary gRPC answer carried ${messages.length} messages`));
  let body: Buffer;
  try {
    body = Buffer.from(`${JSON.stringify(toJson(messages[0]!))}\n`);
  } catch (err) {
    return localJson(req.context, new ProxyError('UPE', `the upstream's message does not decode as ${(err as Error).message}`));
  }
  headers.set('content-type', 'application/json');
  headers.set('content-length', String(body.length));
  return { status: 200, headers, body };
}

/**
 * A server stream: the head goes out with the first message (or the end), each message is written as it is
 * decoded, and the upstream is paused while the client is slower. A failure after the head is the last element.
 */
function streamed(t: CompiledTranscoder, res: ProxyResponse, source: Readable | null, reader: FrameReader, toJson: (m: Buffer) => unknown, headers: HeaderList, req: ProxyRequest, ndjson: boolean): Promise<ProxyResponse> {
  const out = new PassThrough();
  headers.set('content-type', ndjson ? 'application/x-ndjson' : 'application/json');
  const open = ndjson ? '' : '[';
  const sep = ndjson ? '' : ',';
  const end = ndjson ? '' : ']\n';
  const line = ndjson ? '\n' : '';
  let count = 0;
  return new Promise<ProxyResponse>((resolve) => {
    let started = false;
    let finished = false;
    const start = (): void => {
      if (started) return;
      started = true;
      resolve({ status: 200, headers, body: out });
    };
    const fail = (err: ProxyError): void => {
      if (finished) return;
      finished = true;
      source?.destroy();
      if (!started) {
        started = true;
        resolve(localJson(req.context, err));
        return;
      }
      req.context.flag ??= err.flag;
      req.context.error ??= err.message;
      out.end(`${count ? sep : ''}${JSON.stringify({ error: { code: codeOfHttp(err.status), message: err.message, details: [] } })}${line}${end}`);
    };
    const write = (text: string): void => {
      if (!out.write(text) && source && !source.isPaused()) source.pause();
    };
    out.on('drain', () => source?.resume());
    out.on('close', () => {
      if (!finished) {
        finished = true;
        source?.destroy();
      }
    });
    const onEnd = (): void => {
      if (finished) return;
      if (reader.leftover > 0) return fail(new ProxyError('UPE', 'the upstream stream ended inside a message'));
      const st = finalStatus(res);
      if (!started && st.code !== 0) {
        finished = true;
        started = true;
        resolve(errorAnswer(t, httpStatusOf(st.code), st.code, st.message, st.details, headers));
        return;
      }
      finished = true;
      let tail = '';
      if (st.code !== 0) tail = `${count ? sep : ''}${JSON.stringify({ error: { code: st.code, message: st.message, details: decodeDetails(t, st.details) } })}${line}`;
      if (!started) {
        start();
        out.end(`${open}${tail}${end}`);
      } else out.end(`${tail}${end}`);
    };
    if (!source) return onEnd();
    source.on('data', (chunk: Buffer) => {
      if (finished) return;
      let messages: Buffer[];
      try {
        messages = reader.push(chunk);
      } catch (err) {
        return fail(new ProxyError('UPE', (err as Error).message));
      }
      for (const m of messages) {
        let text: string;
        try {
          text = JSON.stringify(toJson(m));
        } catch (err) {
          return fail(new ProxyError('UPE', `a streamed message does not decode: ${(err as Error).message}`));
        }
        write(`${count === 0 ? open : sep}${text}${line}`);
        count++;
        start();
      }
    });
    source.once('end', onEnd);
    source.once('error', (err) => fail(err instanceof ProxyError ? err : new ProxyError('UR', `upstream stream failed: ${err.message}`)));
  });
}

function errorAnswer(t: CompiledTranscoder, status: number, code: number, message: string, detailsBin: string | undefined, headers: HeaderList): ProxyResponse {
  const extra: string[] = [];
  const raw = headers.raw;
  for (let i = 0; i < raw.length; i += 2) if (raw[i] !== 'content-type' && raw[i] !== 'content-length') extra.push(raw[i]!, raw[i + 1]!);
  return jsonErrorResponse(status, code, message, decodeDetails(t, detailsBin), extra);
}

/** grpc-status-details-bin (base64 google.rpc.Status): its details, each Any in JSON; [] when absent or unreadable. */
export function decodeDetails(t: CompiledTranscoder, bin: string | undefined): unknown[] {
  if (!bin) return [];
  try {
    const status = t.status.decode(Buffer.from(bin, 'base64')) as unknown as Obj;
    const json = messageToJson(t.status, status, { ...t.mapping, emitDefaults: false }) as Obj;
    return (json[t.mapping.protoNames ? 'details' : 'details'] as unknown[] | undefined) ?? [];
  } catch {
    return [];
  }
}

function discard(res: ProxyResponse): void {
  if (res.body && !(res.body instanceof Uint8Array)) res.body.resume();
}

async function readAll(s: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of s as AsyncIterable<Buffer>) {
    if (n < max) chunks.push(c);
    n += c.length;
  }
  return Buffer.concat(chunks).subarray(0, max);
}
