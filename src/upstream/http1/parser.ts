// Node's own llhttp binding, the parser node:http runs on, typed for the HTTP/1.1 upstream client.
// It is reached through `_http_common`, which Node has exported unchanged since v12; node:http's client machinery
// around it (and undici's, around its wasm build) costs more per request than the rest of the proxy. ADR 0001.
import { createRequire } from 'node:module';

/** An llhttp parse failure as the binding reports it (code is llhttp's, e.g. HPE_INVALID_CHUNK_SIZE). */
export interface ParseError extends Error {
  readonly code: string;
  readonly reason: string;
  readonly bytesParsed: number;
}

/**
 * Called when a message head is complete. `headers` is the flat [name, value, ...] list with the names as sent, or
 * undefined when the binding already delivered them through onHeaders (more than 32 pairs). Return 1 to tell the
 * parser the message has no body (a response to HEAD), 0 otherwise.
 */
export type OnHeadersComplete = (
  versionMajor: number,
  versionMinor: number,
  headers: string[] | undefined,
  method: number | undefined,
  url: string | undefined,
  statusCode: number,
  statusMessage: string,
  upgrade: boolean,
  shouldKeepAlive: boolean,
) => number;

export interface NativeParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenientFlags: number): void;
  /** Bytes parsed, or the parse error. Callbacks run synchronously inside. */
  execute(data: Buffer): number | ParseError;
  /** Signals end of input: completes a body delimited by the connection's close, or reports a truncated message. */
  finish(): ParseError | undefined;
  close(): void;
  /** A new message starts. */
  [0]: () => void;
  /** Header pairs flushed before the head completes (over 32 pairs) and trailers after the body. */
  [1]: (headers: string[], url: string) => void;
  [2]: OnHeadersComplete;
  /** A body chunk; the binding hands over a copy, so it may be kept. */
  [3]: (chunk: Buffer) => void;
  [4]: () => void;
}

interface Binding {
  readonly HTTPParser: { new (): NativeParser; readonly REQUEST: number; readonly RESPONSE: number; readonly kLenientNone: number };
}

const binding = createRequire(import.meta.url)('_http_common') as Binding;

export const ON_MESSAGE_BEGIN = 0;
export const ON_HEADERS = 1;
export const ON_HEADERS_COMPLETE = 2;
export const ON_BODY = 3;
export const ON_MESSAGE_COMPLETE = 4;

/** A strict response parser (no llhttp leniency) with a header-size limit in bytes. */
export function responseParser(maxHeaderSize: number): NativeParser {
  const parser = new binding.HTTPParser();
  parser.initialize(binding.HTTPParser.RESPONSE, {}, maxHeaderSize, binding.HTTPParser.kLenientNone);
  return parser;
}

export const isParseError = (r: number | ParseError | undefined): r is ParseError => typeof r === 'object';
