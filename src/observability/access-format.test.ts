import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFormat, FormatError, type FormatInput } from './access-format.js';
import type { RequestContext } from '../core/service.js';

function input(): FormatInput {
  const context = { requestId: 'r1', startTime: 0, listener: 'in', downstreamAddress: '127.0.0.1', downstreamProtocol: 'HTTP/1.1', route: 'api', cluster: 'backend', endpoint: '127.0.0.1:9000', attempts: 2, flag: 'UF' } as unknown as RequestContext;
  const req: Record<string, string> = { authorization: 'Bearer SECRET', 'x-request-id': 'r1' };
  return { context, method: 'GET', authority: 'a', path: '/x', status: 503, bytesIn: 1, bytesOut: 2, durationMs: 12.4, userAgent: undefined, reqHeader: (n) => req[n], respHeader: () => undefined };
}

test('compiles a format string into a line', () => {
  const f = compileFormat('%START_TIME% %RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_HOST% %DURATION% %REQ(X-REQUEST-ID)% %RESP(server)% %UPSTREAM_CLUSTER%');
  assert.equal(f(input()), '1970-01-01T00:00:00.000Z 503 UF 127.0.0.1:9000 12 r1 - backend\n');
});

test('sensitive headers print redacted', () => {
  const line = compileFormat('%REQ(Authorization)%')(input());
  assert.equal(line, '[redacted]\n');
  assert.ok(!line.includes('SECRET'));
});

test('an unknown operator is an error naming it', () => {
  assert.throws(() => compileFormat('%NOPE%'), (e: unknown) => e instanceof FormatError && e.message.includes('%NOPE%'));
  assert.throws(() => compileFormat('%REQ()%'), FormatError);
});
