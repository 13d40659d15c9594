import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLoopback } from './listener-runtime.js';

describe('isLoopback (default of expose_error_details)', () => {
  it('loopback addresses, in every spelling', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) assert.equal(isLoopback(a), true, a);
  });
  it('anything reachable from elsewhere', () => {
    for (const a of ['0.0.0.0', '::', '10.0.0.7', '192.168.1.1', '::ffff:10.0.0.1', 'example.com', '127.0.0.1.example.com']) assert.equal(isLoopback(a), false, a);
  });
});
