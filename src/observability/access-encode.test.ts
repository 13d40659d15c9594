import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import type { RequestContext } from '../core/service.js';
import { newContext } from '../http-server/exchange.js';
import { encodeAccessLine, encodedBound, loggedPath, type EncodedRecord } from './access-encode.js';
import { compileAccessLog, createAccessLog, DEFAULT_ACCESS_LOG, formatAccessLine, type AccessRecord } from './access-log.js';

const TIME = /^\{"time":"[^"]*"/;
const untimed = (line: string): string => line.replace(TIME, '{"time":"T"');

const ctx = (over: Partial<RequestContext> = {}): RequestContext => Object.assign(newContext('inbound', '127.0.0.1:5000', 'HTTP/1.1', 'f3b3c0de-0000-4000-8000-000000000000'), over);
const rec = (over: Partial<AccessRecord> = {}): AccessRecord => ({ context: ctx(), method: 'GET', authority: 'svc', path: '/', status: 200, bytesIn: 0, bytesOut: 12, durationMs: 1.5, userAgent: 'curl/8', ...over });

function encoded(r: EncodedRecord): string {
  const p = loggedPath(r);
  const bound = encodedBound(r, p);
  const buf = Buffer.alloc(bound + 16, 0x2a);
  const end = encodeAccessLine(r, p, buf, 8);
  assert.ok(end - 8 <= bound, `the line (${end - 8} bytes) stays within its bound (${bound})`);
  assert.equal(buf[end], 0x2a, 'nothing written past the end');
  return buf.toString('utf8', 8, end);
}

test('the first line of a process with an empty route, cluster and endpoint has every field (the part caches start empty)', () => {
  const r = rec({ context: ctx({ route: '', cluster: '', endpoint: '', downstreamAddress: '' }), status: 404 });
  for (const line of [formatAccessLine(r), encoded(r)]) {
    const j = JSON.parse(line) as Record<string, unknown>;
    assert.equal(j.route, null);
    assert.equal(j.attempts, 0);
    assert.equal(j.downstream, null);
  }
});

test('the encoded line is byte for byte formatAccessLine, whatever the fields carry', () => {
  const text = fc.string({ unit: 'binary', maxLength: 40 });
  const few = fc.constantFrom('', 'a', 'route-1', 'é', 'a"b', 'tab\there');
  const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
  const num = fc.oneof(fc.nat(), fc.integer({ min: 0, max: 2 ** 53 - 1 }), fc.double({ noNaN: false }));
  fc.assert(
    fc.property(
      fc.record({
        requestId: text, listener: few, route: few, cluster: few, endpoint: few, downstreamAddress: few,
        protocol: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2'),
        flag: maybe(fc.constantFrom('UF', 'NR', 'DC')), error: maybe(text), outcome: maybe(fc.constantFrom('not-sent', 'partial')), cause: maybe(fc.constantFrom('connect-timeout', 'reset')),
        grpc: maybe(fc.nat(16)), hop: maybe(text), trace: fc.boolean(), peer: maybe(few), up: maybe(few), key: maybe(text),
        redact: fc.boolean(), method: text, authority: text, path: text, ua: maybe(text), status: fc.integer({ min: 100, max: 599 }),
        bytesIn: num, bytesOut: num, duration: fc.oneof(fc.double({ min: 0, max: 1e7, noNaN: true }), fc.constant(Number.NaN), fc.constant(-1)), attempts: fc.nat(20),
      }),
      (f) => {
        const c = ctx({
          requestId: f.requestId, listener: f.listener, route: f.route, cluster: f.cluster, endpoint: f.endpoint, downstreamAddress: f.downstreamAddress,
          downstreamProtocol: f.protocol, flag: f.flag, error: f.error, upstreamOutcome: f.outcome, upstreamCause: f.cause, grpcStatus: f.grpc, hopPayload: f.hop,
          traceId: f.trace ? '0af7651916cd43dd8448eb211c80319c' : undefined, spanId: f.trace ? 'b7ad6b7169203331' : undefined,
          peerIdentity: f.peer, upstreamIdentity: f.up, apiKeyName: f.key, attempts: f.attempts, redactQuery: f.redact ? ['token'] : undefined,
        } as Partial<RequestContext>);
        const r = rec({ context: c, method: f.method, authority: f.authority, path: f.redact ? `${f.path}?token=${f.path}&a=1` : f.path, userAgent: f.ua, status: f.status, bytesIn: f.bytesIn, bytesOut: f.bytesOut, durationMs: f.duration });
        assert.equal(untimed(encoded(r)), untimed(formatAccessLine(r)));
      },
    ),
    { numRuns: 3000 },
  );
});

test('createAccessLog writes the default format encoded in place, the same lines as formatAccessLine, across chunks', async () => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'access-encode-')), 'access.log');
  const log = createAccessLog(file, compileAccessLog(DEFAULT_ACCESS_LOG));
  const expected: string[] = [];
  for (let i = 0; i < 4000; i++) {
    const r = rec({ path: `/é/${'x'.repeat(i % 700)}"${i}`, userAgent: i % 3 === 0 ? undefined : `agent\n${i}`, context: ctx({ route: `r${i % 5}`, flag: i % 7 === 0 ? 'UF' : undefined }) });
    expected.push(untimed(formatAccessLine(r)));
    log.write(r);
  }
  // A text format in between goes through the string path, then the default again.
  log.configure(compileAccessLog({ format: 'text', textFormat: '%METHOD% %PATH%' }));
  log.write(rec({ path: '/text' }));
  expected.push('GET /text\n');
  log.configure(compileAccessLog(DEFAULT_ACCESS_LOG));
  const last = rec({ path: '/last' });
  log.write(last);
  expected.push(untimed(formatAccessLine(last)));
  await new Promise((r) => setTimeout(r, 300));
  log.close();
  const lines = readFileSync(file, 'utf8').split(/(?<=\n)/);
  assert.deepEqual(lines.map(untimed), expected);
  assert.ok(lines.every((l) => TIME.test(l) || l === 'GET /text\n'));
});

test('the encoded line escapes what line readers take for a break (C1 controls, U+2028/9), as formatAccessLine does', () => {
  const r = rec({ userAgent: 'a\u0085b\u2028c\u2029d\u009fe', path: '/p\u0085q' });
  const line = encoded(r);
  assert.equal(untimed(line), untimed(formatAccessLine(r))); // the two may straddle a millisecond
  assert.ok(line.includes('a\\u0085b\\u2028c\\u2029d\\u009fe'), line);
  assert.equal(line.split(/[\n\u0085\u2028\u2029]/).length, 2, 'one line, ended by its newline');
});
