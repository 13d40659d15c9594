// localResponse reads the failure's typed fields: the attempt note and the access-log outcome come from them, not from its text.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProxyError } from '../core/errors.js';
import { newContext, localResponse } from './exchange.js';

test('the attempt note is added unless the error says it already stated it (a field, not a regex on the text)', () => {
  const ctx = newContext('in', '127.0.0.1', 'HTTP/1.1', 'id');
  ctx.attempts = 1;
  localResponse(ctx, new ProxyError('UF', 'upstream connect refused by a:1 (attempt 5 of the app)', { outcome: 'not-sent', code: 'connect-refused' }));
  assert.equal(ctx.error, 'upstream connect refused by a:1 (attempt 5 of the app); attempt 1/1');

  const retried = newContext('in', '127.0.0.1', 'HTTP/1.1', 'id');
  retried.attempts = 2;
  const res = localResponse(retried, new ProxyError('URX', 'upstream connect refused by a:1; attempt 2/2', { status: 503, outcome: 'not-sent', code: 'connect-refused', attempts: 2 }));
  assert.equal(retried.error, 'upstream connect refused by a:1; attempt 2/2');
  assert.equal(res.headers.get('x-sidecar-flag'), 'URX');
});

test('the typed outcome and cause reach the context for the access log; local failures leave them unset', () => {
  const ctx = newContext('in', '127.0.0.1', 'HTTP/2', undefined);
  localResponse(ctx, new ProxyError('UF', 'upstream connect timeout', { status: 504, outcome: 'not-sent', code: 'connect-timeout' }));
  assert.equal(ctx.upstreamOutcome, 'not-sent');
  assert.equal(ctx.upstreamCause, 'connect-timeout');
  const nr = newContext('in', '127.0.0.1', 'HTTP/2', undefined);
  localResponse(nr, new ProxyError('NR', 'no route'));
  assert.equal(nr.upstreamOutcome, undefined);
  assert.equal(nr.upstreamCause, undefined);
});

test('a context takes its scheme from the listener (http unless given) and has no peer identity without mTLS', () => {
  assert.equal(newContext('in', '127.0.0.1', 'HTTP/1.1', undefined).scheme, 'http');
  const tls = newContext('in', '127.0.0.1', 'HTTP/1.1', undefined, 'https');
  assert.equal(tls.scheme, 'https');
  assert.equal(tls.peerIdentity, undefined);
});
