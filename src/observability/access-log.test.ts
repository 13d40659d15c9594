import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { RequestContext } from '../core/service.js';
import { formatAccessLine, jsonString } from './access-log.js';

const context = (over: Partial<RequestContext> = {}): RequestContext => ({
  requestId: 'f3b3c0de-0000-4000-8000-000000000000',
  startTime: 0,
  listener: 'inbound',
  downstreamAddress: '127.0.0.1',
  downstreamProtocol: 'HTTP/1.1',
  scheme: 'http',
  fromSidecar: false,
  route: 'all',
  cluster: 'app',
  endpoint: '127.0.0.1:8080',
  attempts: 1,
  flag: undefined,
  error: undefined,
  deadline: Infinity,
  downstreamConnection: undefined,
  poolWait: undefined,
  ...over,
});

const record = (over: { context?: RequestContext; path?: string; userAgent?: string; durationMs?: number } = {}) => ({
  context: over.context ?? context(),
  method: 'GET',
  authority: 'example.com',
  path: over.path ?? '/',
  status: 200,
  bytesIn: 0,
  bytesOut: 12,
  durationMs: over.durationMs ?? 1.5,
  userAgent: over.userAgent,
});

test('jsonString quotes plain text as is and escapes everything JSON must escape', () => {
  assert.equal(jsonString(undefined), 'null');
  assert.equal(jsonString('/a/b?c=d'), '"/a/b?c=d"');
  fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => JSON.parse(jsonString(s)) === s));
});

test('jsonString escapes what line readers other than JSON take for a line break (NEL, U+2028/9) and C1 controls', () => {
  // A latin-1 header byte 0x85 arrives as U+0085: Python's splitlines(), Java's and many log viewers end a line there.
  assert.equal(jsonString('x\u0085y\u2028z\u2029\u009b'), '"x\\u0085y\\u2028z\\u2029\\u009b"');
  assert.equal(jsonString('caf\u00e9'), '"caf\u00e9"', 'printable non-ASCII stays as it is');
  const line = formatAccessLine(record({ path: '/p', userAgent: 'a\u0085b' }));
  assert.deepEqual(line.split(/\r\n|[\n\r\u0085\u2028\u2029]/).filter((l) => l !== '').length, 1);
});

test('an access line is one JSON object per line whatever the request carried', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), fc.string(), (path, agent, error) => {
      const line = formatAccessLine(record({ path, userAgent: agent, context: context({ error, flag: 'UF', route: error }) }));
      assert.equal(line.indexOf('\n'), line.length - 1);
      const j = JSON.parse(line) as Record<string, unknown>;
      assert.equal(j.path, path);
      assert.equal(j.user_agent, agent);
      assert.equal(j.error, error);
      assert.equal(j.route, error === '' ? null : error);
      assert.equal(j.response_flag, 'UF');
    }),
  );
});

test('durations are milliseconds rounded to the microsecond; empty names are null', () => {
  const j = (ms: number) => JSON.parse(formatAccessLine(record({ durationMs: ms, context: context({ route: '', endpoint: '' }) }))) as Record<string, unknown>;
  assert.equal(j(0).duration_ms, 0);
  assert.equal(j(0.0004).duration_ms, 0);
  assert.equal(j(0.0015).duration_ms, 0.002);
  assert.equal(j(12.0009).duration_ms, 12.001);
  assert.equal(j(1234.5).duration_ms, 1234.5);
  assert.equal(j(1).route, null);
  assert.equal(j(1).upstream, null);
  assert.equal(j(1).cluster, 'app');
});

test('a failed upstream attempt logs its typed outcome and cause; other lines carry nulls', () => {
  const failed = JSON.parse(
    formatAccessLine(record({ context: context({ flag: 'UF', error: 'upstream connect timeout', upstreamOutcome: 'not-sent', upstreamCause: 'connect-timeout' }) })),
  ) as Record<string, unknown>;
  assert.equal(failed.upstream_outcome, 'not-sent');
  assert.equal(failed.upstream_cause, 'connect-timeout');
  const local = JSON.parse(formatAccessLine(record({ context: context({ flag: 'NR', error: 'no route' }) }))) as Record<string, unknown>;
  assert.equal(local.upstream_outcome, null);
  assert.equal(local.upstream_cause, null);
  const ok = JSON.parse(formatAccessLine(record())) as Record<string, unknown>;
  assert.equal(ok.upstream_outcome, null);
  assert.equal(ok.upstream_cause, null);
});

test('peer_identity and upstream_identity close every line: null when absent, the SPIFFE IDs when known', () => {
  const none = JSON.parse(formatAccessLine(record())) as Record<string, unknown>;
  assert.equal(none.peer_identity, null);
  assert.equal(none.upstream_identity, null);
  assert.ok('peer_identity' in none && 'upstream_identity' in none);
  const web = 'spiffe://example.org/ns/default/sa/web';
  const api = 'spiffe://example.org/ns/default/sa/api';
  const both = JSON.parse(formatAccessLine(record({ context: context({ peerIdentity: web, upstreamIdentity: api }) }))) as Record<string, unknown>;
  assert.equal(both.peer_identity, web);
  assert.equal(both.upstream_identity, api);
  // The cached tail follows a change of either one, back and forth.
  const onlyUp = JSON.parse(formatAccessLine(record({ context: context({ upstreamIdentity: api }) }))) as Record<string, unknown>;
  assert.equal(onlyUp.peer_identity, null);
  assert.equal(onlyUp.upstream_identity, api);
  const again = JSON.parse(formatAccessLine(record({ context: context({ peerIdentity: web, upstreamIdentity: api }) }))) as Record<string, unknown>;
  assert.deepEqual([again.peer_identity, again.upstream_identity], [web, api]);
});

test('redactQuery masks the values of credential query parameters only', async () => {
  const { redactQuery } = await import('./access-log.js');
  assert.equal(redactQuery('/a?x=1&access_token=abc.def&y', ['access_token']), '/a?x=1&access_token=[redacted]&y');
  assert.equal(redactQuery('/a?access%5Ftoken=abc', ['access_token']), '/a?access%5Ftoken=[redacted]');
  assert.equal(redactQuery('/a', ['access_token']), '/a');
});

test('trace_id and span_id appear in the JSON line only when tracing set them', async () => {
  const none = JSON.parse(formatAccessLine(record())) as Record<string, unknown>;
  assert.ok(!('trace_id' in none) && !('span_id' in none));
  const set = JSON.parse(formatAccessLine(record({ context: context({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' }) }))) as Record<string, unknown>;
  assert.equal(set.trace_id, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(set.span_id, '00f067aa0ba902b7');
});

test('compileAccessLog: the default is the plain JSON line and no filter', async () => {
  const { compileAccessLog } = await import('./access-log.js');
  const c = compileAccessLog({ format: 'json' });
  assert.equal(c.line, formatAccessLine, 'no wrapper on the default path');
  assert.equal(c.keep, undefined);
  assert.equal(compileAccessLog({ format: 'json', filter: { onlyErrors: false } }).keep, undefined);
});

test('compileAccessLog: chosen headers in the JSON line, sensitive ones redacted, nulls for absent ones', async () => {
  const { compileAccessLog } = await import('./access-log.js');
  const { HeaderList } = await import('../core/headers.js');
  const c = compileAccessLog({ format: 'json', requestHeaders: ['X-Tenant', 'Cookie', 'x-secret', 'x-none'], responseHeaders: ['content-type'], sensitiveHeaders: ['X-Secret'] });
  const r = { ...record(), requestHeaders: new HeaderList(['x-tenant', 'acme', 'cookie', 'sid=SECRET', 'x-secret', 'SECRET']), responseHeaders: new HeaderList(['content-type', 'text/plain']) };
  const line = c.line(r);
  assert.ok(!line.includes('SECRET'), line);
  const j = JSON.parse(line) as Record<string, unknown>;
  assert.deepEqual(j.request_headers, { 'x-tenant': 'acme', cookie: '[redacted]', 'x-secret': '[redacted]', 'x-none': null });
  assert.deepEqual(j.response_headers, { 'content-type': 'text/plain' });
  assert.equal(j.peer_identity, null, 'the closing fields still close the line');
});

test('compileAccessLog: text and ecs formats; the filter is compiled with them', async () => {
  const { compileAccessLog } = await import('./access-log.js');
  const text = compileAccessLog({ format: 'text', textFormat: '%METHOD% %RESPONSE_CODE%', filter: { onlyErrors: true } });
  assert.equal(text.line(record()), 'GET 200\n');
  assert.equal(text.keep!(200, undefined, 1, 'a'), false);
  assert.equal(text.keep!(502, undefined, 1, 'a'), true);
  const dflt = compileAccessLog({ format: 'text' }).line(record());
  assert.match(dflt, /^\[\d{4}-.*\] "GET \/ HTTP\/1\.1" 200 - 0 12 2 "127\.0\.0\.1" "-" "f3b3c0de-0000-4000-8000-000000000000" "example\.com" "127\.0\.0\.1:8080" -\n$/);
  const ecs = JSON.parse(compileAccessLog({ format: 'ecs', serviceName: 'web' }).line(record())) as { service: { name: string } };
  assert.equal(ecs.service.name, 'web');
});
