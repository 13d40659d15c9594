import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFormat, FormatError, OPERATORS, type FormatInput } from './access-format.js';
import { HeaderList } from '../core/headers.js';
import type { RequestContext } from '../core/service.js';
import { sensitiveHeaderSet } from './sensitive-headers.js';

function input(over: Partial<RequestContext> = {}, path = '/x'): FormatInput {
  const context = {
    requestId: 'r1', startTime: 0, listener: 'in', downstreamAddress: '127.0.0.1', downstreamProtocol: 'HTTP/1.1', scheme: 'http', route: 'api', cluster: 'backend',
    endpoint: '127.0.0.1:9000', attempts: 2, flag: 'UF', ...over,
  } as unknown as RequestContext;
  const requestHeaders = new HeaderList(['authorization', 'Bearer SECRET', 'x-request-id', 'r1', 'x-multi', 'a', 'x-multi', 'b', 'x-token', 'T0K']);
  const responseHeaders = new HeaderList(['server', 'up', 'set-cookie', 'sid=SECRET']);
  return { context, method: 'GET', authority: 'a.example:8080', path, status: 503, bytesIn: 1, bytesOut: 2, durationMs: 12.4, userAgent: 'curl/8', requestHeaders, responseHeaders };
}

test('compiles a format string into a line', () => {
  const f = compileFormat('%RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_HOST% %DURATION% %REQ(X-REQUEST-ID)% %RESP(server)% %RESP(x-none)% %UPSTREAM_CLUSTER%');
  assert.equal(f(input()), '503 UF 127.0.0.1:9000 12 r1 up - backend\n');
});

test('START_TIME is the wall-clock start of the request (the context keeps a monotonic time)', () => {
  const start = performance.now() - 50;
  const line = compileFormat('%START_TIME%')(input({ startTime: start }));
  const t = Date.parse(line.trim());
  assert.ok(Math.abs(t - (Date.now() - 50)) < 1000, line);
});

test('the request line, identities, trace ids and causes', () => {
  const f = compileFormat('%METHOD% %PATH% %AUTHORITY% "%USER_AGENT%" %REQUEST_ID% %TRACE_ID% %SPAN_ID% %DOWNSTREAM_PEER_URI_SAN% %UPSTREAM_PEER_URI_SAN% %UPSTREAM_TRANSPORT_FAILURE_REASON% %UPSTREAM_REQUEST_ATTEMPT_COUNT% %GRPC_STATUS%');
  const set = input({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', peerIdentity: 'spiffe://x/web', upstreamCause: 'connect-refused' });
  assert.equal(f(set), 'GET /x a.example:8080 "curl/8" r1 4bf92f3577b34da6a3ce929d0e0e4736 00f067aa0ba902b7 spiffe://x/web - connect-refused 2 -\n');
  assert.equal(f(input()), 'GET /x a.example:8080 "curl/8" r1 - - - - - 2 -\n');
});

test('pseudo-headers, alternatives and truncation, as in Envoy', () => {
  assert.equal(compileFormat('%REQ(:METHOD)% %REQ(:PATH)% %REQ(:AUTHORITY)% %REQ(:SCHEME)%')(input()), 'GET /x a.example:8080 http\n');
  assert.equal(compileFormat('%REQ(X-NONE?X-REQUEST-ID)% %REQ(X-MULTI)% %REQ(x-request-id):1% %PATH:2%')(input()), 'r1 a, b r /x\n');
  assert.throws(() => compileFormat('%REQ(:nope)%'), FormatError);
  assert.throws(() => compileFormat('%PATH:0%'), FormatError);
});

test('sensitive headers print redacted, the defaults and the configured ones', () => {
  const line = compileFormat('%REQ(Authorization)% %RESP(set-cookie)% %REQ(x-token)% %REQ(cookie)%')(input());
  assert.equal(line, '[redacted] [redacted] T0K -\n');
  const more = compileFormat('%REQ(x-token)% %REQ(x-none?authorization)%', sensitiveHeaderSet(['X-Token']))(input());
  assert.equal(more, '[redacted] [redacted]\n');
  assert.ok(!line.includes('SECRET') && !more.includes('T0K'));
});

test('credential query values are masked and control characters cannot break the line', () => {
  const f = compileFormat('%PATH% %REQ(:PATH)% %RESPONSE_CODE_DETAILS%');
  const line = f(input({ redactQuery: ['access_token'], error: 'bad\nline' }, '/a?access_token=SECRET&b=1'));
  assert.equal(line, '/a?access_token=[redacted]&b=1 /a?access_token=[redacted]&b=1 bad\\nline\n');
});

test('a quote cannot end a quoted field and forge the next ones; nor can a C1 line break', () => {
  // The default format quotes the user agent, request id, authority and upstream: a " in a value must not close its field.
  const f = compileFormat('"%USER_AGENT%" "%REQUEST_ID%" "%REQ(x-tenant)%"');
  const forged = { ...input(), userAgent: 'ua" "forged-id" "evil', requestHeaders: new HeaderList(['x-tenant', 'a\\"b\u0085c\u2028d']) };
  const line = f(forged);
  assert.equal(line, '"ua\\" \\"forged-id\\" \\"evil" "r1" "a\\\\\\"b\\u0085c\\u2028d"\n');
  // What a log parser reading "..." fields (with backslash escapes) gets back:
  const fields = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => JSON.parse(`"${m[1]}"`) as string);
  assert.deepEqual(fields, ['ua" "forged-id" "evil', 'r1', 'a\\"b\u0085c\u2028d']);
  // Truncation never leaves half an escape to swallow the closing quote.
  const cut = (n: number, ua: string): string => compileFormat(`"%USER_AGENT:${n}%"`)({ ...input(), userAgent: ua });
  assert.equal(cut(5, 'abcd"'), '"abcd"\n');
  assert.equal(cut(6, 'abcd"'), '"abcd\\""\n');
  assert.equal(cut(6, 'abcd\u0085'), '"abcd"\n');
  assert.equal(cut(6, 'abcd\\'), '"abcd\\\\"\n');
});

test('an unknown operator is an error naming it, with a suggestion; arguments only where taken', () => {
  assert.throws(() => compileFormat('%NOPE%'), (e: unknown) => e instanceof FormatError && e.message.includes('%NOPE%'));
  assert.throws(() => compileFormat('%RESPONSE_CODES%'), (e: unknown) => e instanceof FormatError && /did you mean "RESPONSE_CODE"/.test(e.message));
  assert.throws(() => compileFormat('%response_code%'), FormatError);
  assert.throws(() => compileFormat('%REQ()%'), FormatError);
  assert.throws(() => compileFormat('%DURATION(x)%'), FormatError);
  assert.equal(compileFormat('100% plain')(input()), '100% plain\n');
  // An operator begun and not finished is a typo, not text to print on every line.
  for (const bad of ['%REQ(user-agent%', '%PATH:abc%', '"%RESP(x-a) %RESPONSE_CODE%', '%PATH:%']) {
    assert.throws(() => compileFormat(bad), (e: unknown) => e instanceof FormatError && /malformed/.test(e.message), bad);
  }
  assert.equal(compileFormat('50% off: %RESPONSE_CODE% (100%)')(input()), '50% off: 503 (100%)\n');
  assert.equal(compileFormat('%METHOD%\n')(input()), 'GET\n', 'a trailing newline in the format is the line end');
});

test('every operator yields a string for a bare context', () => {
  for (const [name, g] of Object.entries(OPERATORS)) assert.equal(typeof g(input()), 'string', name);
});
