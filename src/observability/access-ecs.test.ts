import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileEcs, ECS_VERSION, splitAuthority } from './access-ecs.js';
import { HeaderList } from '../core/headers.js';
import type { RequestContext } from '../core/service.js';
import type { AccessRecord } from './access-log.js';
import { sensitiveHeaderSet } from './sensitive-headers.js';

const ctx = (over: Partial<RequestContext> = {}): RequestContext =>
  ({ requestId: 'r1', startTime: 0, listener: 'in', downstreamAddress: '10.0.0.7', downstreamProtocol: 'HTTP/2', scheme: 'http', route: 'api', cluster: 'backend', endpoint: '10.0.0.9:80', attempts: 1, flag: undefined, error: undefined, ...over }) as RequestContext;
const rec = (over: Partial<AccessRecord> = {}): AccessRecord => ({
  context: ctx(), method: 'POST', authority: 'shop.example:8443', path: '/cart?id=7', status: 201, bytesIn: 10, bytesOut: 20, durationMs: 1.5, userAgent: 'curl/8',
  requestHeaders: new HeaderList(['x-tenant', 'acme', 'authorization', 'Bearer SECRET']), responseHeaders: new HeaderList(['server', 'up']), ...over,
});
/** The value at an ECS dotted field name in a parsed (nested) line. */
const at = (j: unknown, field: string): unknown => field.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], j);

test('an ECS line: nested objects under the ECS names', () => {
  const line = compileEcs({ requestHeaders: [], responseHeaders: [], sensitive: sensitiveHeaderSet(), serviceName: 'shop' })(rec({ context: ctx({ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) }) }));
  assert.equal(line.indexOf('\n'), line.length - 1);
  const j = JSON.parse(line) as unknown;
  assert.match(at(j, '@timestamp') as string, /^\d{4}-\d\d-\d\dT/);
  assert.equal(at(j, 'ecs.version'), ECS_VERSION);
  assert.equal(at(j, 'http.request.method'), 'POST');
  assert.equal(at(j, 'http.request.id'), 'r1');
  assert.equal(at(j, 'http.request.body.bytes'), 10);
  assert.equal(at(j, 'http.response.status_code'), 201);
  assert.equal(at(j, 'http.response.body.bytes'), 20);
  assert.equal(at(j, 'http.version'), '2');
  assert.deepEqual(at(j, 'url'), { domain: 'shop.example', port: 8443, path: '/cart', query: 'id=7', original: '/cart?id=7' });
  assert.equal(at(j, 'event.duration'), 1_500_000);
  assert.equal(at(j, 'event.outcome'), 'success');
  assert.equal(at(j, 'source.address'), '10.0.0.7');
  assert.equal(at(j, 'user_agent.original'), 'curl/8');
  assert.equal(at(j, 'trace.id'), 'a'.repeat(32));
  assert.equal(at(j, 'span.id'), 'b'.repeat(16));
  assert.equal(at(j, 'service.name'), 'shop');
  assert.deepEqual(at(j, 'sidecar'), { listener: 'in', route: 'api', cluster: 'backend', upstream: '10.0.0.9:80', attempts: 1 });
});

test('failures: outcome, error and the sidecar fields; absent values are left out', () => {
  const f = compileEcs({ requestHeaders: [], responseHeaders: [], sensitive: sensitiveHeaderSet() });
  const j = JSON.parse(f(rec({ status: 503, userAgent: undefined, context: ctx({ flag: 'UF', error: 'connect refused', upstreamOutcome: 'not-sent', upstreamCause: 'connect-refused', route: '' }) }))) as unknown;
  assert.equal(at(j, 'event.outcome'), 'failure');
  assert.equal(at(j, 'error.message'), 'connect refused');
  assert.equal(at(j, 'sidecar.response_flag'), 'UF');
  assert.equal(at(j, 'sidecar.upstream_cause'), 'connect-refused');
  assert.equal(at(j, 'service.name'), 'in', 'the listener when service_name is unset');
  assert.ok(at(j, 'sidecar.route') === undefined && at(j, 'user_agent') === undefined && at(j, 'trace') === undefined);
});

test('chosen headers under sidecar.*_headers; sensitive ones redacted; credential query masked', () => {
  const f = compileEcs({ requestHeaders: ['X-Tenant', 'authorization', 'x-none'], responseHeaders: ['server'], sensitive: sensitiveHeaderSet() });
  const line = f(rec({ path: '/a?api_key=SECRET', context: ctx({ redactQuery: ['api_key'] }) }));
  const j = JSON.parse(line) as unknown;
  assert.deepEqual(at(j, 'sidecar.request_headers'), { 'x-tenant': 'acme', authorization: '[redacted]' });
  assert.deepEqual(at(j, 'sidecar.response_headers'), { server: 'up' });
  assert.equal(at(j, 'url.query'), 'api_key=[redacted]');
  assert.ok(!line.includes('SECRET'));
});

test('splitAuthority', () => {
  assert.deepEqual(splitAuthority('a.example'), { domain: 'a.example', port: undefined });
  assert.deepEqual(splitAuthority('a.example:80'), { domain: 'a.example', port: 80 });
  assert.deepEqual(splitAuthority('[::1]:8080'), { domain: '[::1]', port: 8080 });
  assert.deepEqual(splitAuthority('[::1]'), { domain: '[::1]', port: undefined });
  assert.deepEqual(splitAuthority('a:99999'), { domain: 'a', port: undefined });
});
