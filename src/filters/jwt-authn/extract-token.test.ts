// jwt_authn token sources: the first source with a token wins, and every configured query source the path carries is
// masked wherever the path is shown (access log, /debug/requests, the dashboard), read or not.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testRequest } from '../../policies/testing.js';
import { extractToken } from './jwt-authn.js';

describe('extractToken', () => {
  it('the first source with a token wins; a query token beside it is masked all the same', () => {
    const from = [{ bearer: true as const }, { query: 'access_token' }];
    const both = { ...testRequest({ headers: ['authorization', 'Bearer H.T.S'] }), path: '/p?access_token=Q-SECRET' };
    assert.equal(extractToken(both, from)?.token, 'H.T.S');
    assert.deepEqual(both.context.redactQuery, ['access_token']);
    const query = { ...testRequest(), path: '/p?access_token=Q.T.S' };
    assert.equal(extractToken(query, from)?.token, 'Q.T.S');
    assert.deepEqual(query.context.redactQuery, ['access_token'], 'once');
    const plain = { ...testRequest({ headers: ['authorization', 'Bearer H.T.S'] }), path: '/p?x=1' };
    extractToken(plain, from);
    assert.equal(plain.context.redactQuery, undefined);
  });
});
