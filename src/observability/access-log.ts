// The access log: one JSON line per request, built by hand (known fields) and written through a buffered async stream.
import { LineWriter } from './line-writer.js';
import type { RequestContext } from '../core/service.js';

export interface AccessRecord {
  readonly context: RequestContext;
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly status: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationMs: number;
  readonly userAgent: string | undefined;
}

export interface AccessLog {
  write(r: AccessRecord): void;
  /** Writes out what is buffered and stops the periodic flush. */
  close(): void;
  /** Lines dropped because the destination could not keep up. */
  dropped(): number;
}

export const noAccessLog: AccessLog = { write() {}, close() {}, dropped: () => 0 };

export function createAccessLog(path: string): AccessLog & { readonly writer: LineWriter } {
  const writer = new LineWriter(path);
  return {
    writer,
    write(r) {
      writer.write(formatAccessLine(r));
    },
    close() {
      writer.close();
    },
    dropped: () => writer.dropped,
  };
}

// toISOString costs more than the rest of the line; requests finishing in the same millisecond share it.
let lastMs = 0;
let lastIso = '';
function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

// Strings that need no JSON escaping (the common case) are quoted directly; the test is cheaper than JSON.stringify.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/;
const str = (v: string | undefined): string => (v === undefined ? 'null' : NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`);

export function formatAccessLine(r: AccessRecord): string {
  const c = r.context;
  return (
    `{"time":"${isoNow()}","listener":${str(c.listener)},"request_id":${str(c.requestId)}` +
    `,"method":${str(r.method)},"authority":${str(r.authority)},"path":${str(r.path)},"protocol":"${c.downstreamProtocol}"` +
    `,"status":${r.status},"bytes_in":${r.bytesIn},"bytes_out":${r.bytesOut},"duration_ms":${Math.round(r.durationMs * 1000) / 1000}` +
    `,"route":${str(c.route || undefined)},"cluster":${str(c.cluster || undefined)},"upstream":${str(c.endpoint || undefined)}` +
    `,"attempts":${c.attempts},"response_flag":${str(c.flag)},"error":${str(c.error)}` +
    `,"downstream":${str(c.downstreamAddress)},"user_agent":${str(r.userAgent)}}\n`
  );
}
