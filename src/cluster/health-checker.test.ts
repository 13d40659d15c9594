import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { splitHostPort, statusMatcher } from './health-checker.js';

describe('health-checker helpers', () => {
  it('statusMatcher takes numbers and inclusive ranges', () => {
    const m = statusMatcher([204, '300-302']);
    assert.deepEqual([200, 204, 299, 300, 302, 303, 0, 700].map(m), [false, true, false, true, true, false, false, false]);
    const d = statusMatcher(['200-399']);
    assert.deepEqual([199, 200, 399, 400].map(d), [false, true, true, false]);
  });

  it('splitHostPort handles IPv4, names and bracketed IPv6', () => {
    assert.deepEqual(splitHostPort('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
    assert.deepEqual(splitHostPort('app.internal:80'), { host: 'app.internal', port: 80 });
    assert.deepEqual(splitHostPort('[::1]:9000'), { host: '::1', port: 9000 });
  });
});
