import { test } from 'node:test';
import assert from 'node:assert/strict';
import { credentialHeaders, DEFAULT_SENSITIVE_HEADERS, sensitiveHeaderSet } from './sensitive-headers.js';

test('the default list merged with configured names, lower-case', () => {
  const s = sensitiveHeaderSet(['X-Internal-Token']);
  for (const h of DEFAULT_SENSITIVE_HEADERS) assert.ok(s.has(h), h);
  assert.ok(s.has('x-internal-token'));
  assert.equal(s.size, DEFAULT_SENSITIVE_HEADERS.length + 1);
});

test('the headers credential filters read are found in chains and overrides', () => {
  const config = {
    listeners: [
      {
        filters: [
          { type: 'api_key', config: { header: 'X-Shop-Key', keys_file: '/k' } },
          { type: 'jwt_authn', config: { providers: [{ from: [{ bearer: true }, { header: 'x-jwt', prefix: 'T ' }] }] } },
          { type: 'header_mutation', config: { request: { set: { header: 'not-a-credential' } } } },
        ],
        routes: [{ filter_overrides: { api_key: { config: { header: 'x-route-key' } } } }],
      },
    ],
  };
  assert.deepEqual(credentialHeaders(config).sort(), ['x-jwt', 'x-route-key', 'x-shop-key']);
});
