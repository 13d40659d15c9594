// The upstream's answer to an HTTP/1.1 Upgrade request, read with llhttp before anything becomes a tunnel: a 101 for
// the protocol asked for switches; any other answer is relayed as an ordinary response and the connection then closes.
import type { Socket } from 'node:net';
import { ProxyError } from '../core/errors.js';
import { HeaderList } from '../core/headers.js';
import type { HeaderEdit } from '../filters/header-mutation/header-mutation.js';
import { cleanResponseHeaders } from '../http-server/hygiene.js';
import { isParseError, ON_BODY, ON_HEADERS, ON_HEADERS_COMPLETE, ON_MESSAGE_COMPLETE, responseParser } from '../upstream/http1/parser.js';

/** The largest response head accepted from the upstream (as for pooled HTTP/1.1 connections). */
const MAX_RESPONSE_HEAD = 64 * 1024;

export interface UpgradeAnswer {
  /** What the client asked for in Upgrade. */
  readonly asked: string;
  readonly method: string;
  /** The client speaks HTTP/1.0: a body of unknown length is delimited by the close, not chunked. */
  readonly http10: boolean;
  /** Time allowed for the response head (0: none). */
  readonly headTimeout: number;
  /** Idle time allowed while a declined upgrade's response body is relayed. */
  readonly bodyIdleTimeout: number;
  /** The route's response header edits, if any. */
  readonly editResponse: HeaderEdit | undefined;
  /** A 101 for the asked protocol: its head is written downstream; `rest` is what the upstream sent after it. */
  onSwitched(rest: Buffer): void;
  /** A final response other than 101 was relayed (or cut short by `err`); the downstream is ending. */
  onRelayed(status: number, bodyBytes: number, err: ProxyError | undefined): void;
  /** Nothing usable came back; nothing was written downstream. */
  onFailed(err: ProxyError): void;
}

/** Whether a 101's Upgrade names a protocol the client asked for (tokens compared case-insensitively). */
export function switchedToAsked(asked: string, answered: string | undefined): boolean {
  if (answered === undefined) return false;
  const offered = asked.toLowerCase().split(',').map((t) => t.trim());
  const got = answered.toLowerCase().split(',').map((t) => t.trim());
  return got.length > 0 && got.every((t) => t !== '' && offered.includes(t));
}

/** Serialises a response head from lower-case pairs. */
function headOf(status: number, message: string, raw: readonly string[], extra: string): string {
  let head = `HTTP/1.1 ${status} ${message}\r\n`;
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return `${head}${extra}\r\n`;
}

/** Lower-cases the names of a flat pair list in place. */
function lowerNames(raw: string[]): string[] {
  for (let i = 0; i < raw.length; i += 2) raw[i] = raw[i]!.toLowerCase();
  return raw;
}

/**
 * Reads the upstream's answer on `upstream` (already sent the request) and acts on it, writing to `downstream` (held
 * paused by the caller: none of its bytes may reach the upstream unless the protocol switched).
 */
export function readUpgradeAnswer(upstream: Socket, downstream: Socket, a: UpgradeAnswer): void {
  const parser = responseParser(MAX_RESPONSE_HEAD);
  let pairs: string[] | undefined;
  /** 'head': waiting for the final head; 'body': relaying a declined upgrade's response; 'done': settled. */
  let phase: 'head' | 'body' | 'done' = 'head';
  let status = 0;
  let bodyBytes = 0;
  let chunked = false;
  let switched = false;
  let timer: NodeJS.Timeout | undefined;
  /** The parser may not be closed from inside its own callbacks: execute() closes it after it returns. */
  let executing = false;

  const cleanup = (): void => {
    clearTimeout(timer);
    upstream.off('data', onData);
    upstream.off('end', onEnd);
    upstream.off('close', onClose);
    upstream.off('timeout', onIdle);
    downstream.off('drain', onDrain);
    upstream.setTimeout(0);
    if (!executing) parser.close();
  };
  const fail = (err: ProxyError): void => {
    if (phase === 'done') return;
    const wasBody = phase === 'body';
    phase = 'done';
    cleanup();
    upstream.destroy();
    if (!wasBody) return a.onFailed(err);
    // The head is out: a short body must not look whole to the client.
    downstream.destroy();
    a.onRelayed(status, bodyBytes, err);
  };
  const finishRelay = (): void => {
    if (phase !== 'body') return;
    phase = 'done';
    cleanup();
    upstream.destroy();
    if (chunked) downstream.end('0\r\n\r\n');
    else downstream.end();
    a.onRelayed(status, bodyBytes, undefined);
  };
  const write = (data: string | Buffer): void => {
    if (!downstream.write(data)) upstream.pause();
  };

  parser[ON_HEADERS] = (flushed) => {
    (pairs ??= []).push(...flushed);
  };
  parser[ON_HEADERS_COMPLETE] = (_maj, _min, headers, _method, _url, code, message) => {
    const raw = lowerNames(headers ?? pairs ?? []);
    pairs = undefined;
    if (code === 101) {
      const answered = new HeaderList(raw).get('upgrade');
      if (!switchedToAsked(a.asked, answered)) {
        fail(new ProxyError('UPE', `upstream answered 101 with Upgrade "${answered ?? ''}", not the "${a.asked}" asked for`));
        return 0;
      }
      cleanResponseHeaders(raw);
      const list = new HeaderList(raw);
      a.editResponse?.(list);
      write(headOf(101, message || 'Switching Protocols', list.raw, `connection: upgrade\r\nupgrade: ${answered}\r\n`));
      switched = true;
      return 0;
    }
    if (code < 200) {
      // An interim response (100, 103) is passed on; the final one follows.
      cleanResponseHeaders(raw);
      write(headOf(code, message, raw, ''));
      return 0;
    }
    phase = 'body';
    status = code;
    clearTimeout(timer);
    const list = new HeaderList(raw);
    const wasChunked = list.has('transfer-encoding');
    cleanResponseHeaders(raw);
    a.editResponse?.(list);
    const noBody = a.method === 'HEAD' || code === 204 || code === 304;
    let framing = 'connection: close\r\n';
    if (!noBody && (wasChunked || !list.has('content-length'))) {
      list.remove('content-length');
      // The body's length is not known ahead: re-chunked for HTTP/1.1, delimited by the close for HTTP/1.0.
      if (!a.http10) {
        chunked = true;
        framing += 'transfer-encoding: chunked\r\n';
      }
    }
    write(headOf(code, message, list.raw, framing));
    if (a.bodyIdleTimeout > 0) upstream.setTimeout(a.bodyIdleTimeout);
    return noBody ? 1 : 0;
  };
  parser[ON_BODY] = (chunk) => {
    if (phase !== 'body') return;
    bodyBytes += chunk.length;
    if (chunked) write(`${chunk.length.toString(16)}\r\n`);
    write(chunk);
    if (chunked) write('\r\n');
  };
  parser[ON_MESSAGE_COMPLETE] = () => {
    if (phase === 'body') finishRelay();
  };

  function onData(data: Buffer): void {
    executing = true;
    const n = parser.execute(data);
    executing = false;
    if (phase === 'done') {
      parser.close();
      return;
    }
    if (isParseError(n)) return fail(new ProxyError('UPE', `upstream sent an invalid response to the upgrade: ${n.reason || n.code}`));
    if (switched) {
      phase = 'done';
      cleanup();
      upstream.pause(); // the tunnel's pipe resumes it
      a.onSwitched(data.subarray(n));
    }
  }
  function onEnd(): void {
    executing = true;
    const r = parser.finish();
    executing = false;
    if (phase === 'done') {
      parser.close();
      return;
    }
    if (phase === 'body' && !isParseError(r)) return finishRelay();
    fail(
      phase === 'head'
        ? new ProxyError('UC', 'upstream closed the connection before answering the upgrade')
        : new ProxyError('UC', 'upstream closed the connection before the response body was complete'),
    );
  }
  function onClose(): void {
    fail(new ProxyError('UC', phase === 'head' ? 'upstream closed the connection before answering the upgrade' : 'upstream connection lost mid-response'));
  }
  function onIdle(): void {
    fail(new ProxyError('UT', `upstream sent nothing for ${a.bodyIdleTimeout}ms of the response body (stream_idle_timeout)`));
  }
  function onDrain(): void {
    upstream.resume();
  }

  upstream.on('data', onData);
  upstream.on('end', onEnd);
  upstream.on('close', onClose);
  upstream.on('timeout', onIdle);
  downstream.on('drain', onDrain);
  if (a.headTimeout > 0) {
    timer = setTimeout(() => fail(new ProxyError('UT', `upstream did not answer the upgrade within ${a.headTimeout}ms (route timeout)`)), a.headTimeout);
  }
}
