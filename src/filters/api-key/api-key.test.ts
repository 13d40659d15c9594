// api_key pure parts: key files, sha256-stored keys, environment keys, constant-time matching over every key.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { HeaderList } from '../../core/headers.js';
import { Counter } from '../../observability/metrics.js';
import { testRequest } from '../../policies/testing.js';
import { apiKeyLayer, keyHash, loadKeys, matchKey, parseKeysFile } from './api-key.js';
import { apiKeyConfig } from './schema.js';

describe('api_key keys', () => {
  it('parses name/key lines, sha256-stored keys and comments; refuses malformed lines', () => {
    const hex = createHash('sha256').update('s3cret').digest('hex');
    const keys = parseKeysFile(`# keys\n\nalpha a-key\nbeta sha256:${hex}\n`, 'f');
    assert.deepEqual(keys.map((k) => k.name), ['alpha', 'beta']);
    assert.equal(matchKey(keys, 'a-key'), 'alpha');
    assert.equal(matchKey(keys, 's3cret'), 'beta');
    assert.equal(matchKey(keys, `sha256:${hex}`), undefined, 'the stored hash is not itself a key');
    assert.equal(matchKey(keys, 'A-KEY'), undefined);
    assert.throws(() => parseKeysFile('just-one-field\n', 'keys.txt'), /keys\.txt:1/);
    assert.deepEqual(keyHash(' x '), keyHash('x'));
  });

  it('environment keys: set ones load, an unset one is an error', () => {
    const cfg = apiKeyConfig.parse({ keys_env: [{ name: 'deploy', env: 'K1' }] });
    assert.equal(matchKey(loadKeys(cfg, { K1: 'v' }), 'v'), 'deploy');
    assert.throws(() => loadKeys(cfg, {}), /K1/);
  });

  it('the first of duplicate keys names the match', () => {
    const keys = parseKeysFile('a same\nb same\n', 'f');
    assert.equal(matchKey(keys, 'same'), 'a');
  });
});

describe('api_key query keys', () => {
  it('a key in the query is masked wherever the path is shown, also when the header carried the key used', async () => {
    const cfg = apiKeyConfig.parse({ keys_env: [{ name: 'alice', env: 'K_TEST' }], query: 'api_key' });
    const keys = loadKeys(cfg, { K_TEST: 'good' });
    const svc = apiKeyLayer(cfg, keys, () => new Counter())(async () => ({ status: 200, headers: new HeaderList(), body: null }));
    const both = { ...testRequest({ headers: ['x-api-key', 'good'] }), path: '/a?api_key=OTHER-SECRET' };
    assert.equal((await svc(both)).status, 200);
    assert.deepEqual(both.context.redactQuery, ['api_key'], 'the header won, the query value is still a credential');
    const query = { ...testRequest(), path: '/a?api_key=good' };
    assert.equal((await svc(query)).status, 200);
    assert.deepEqual(query.context.redactQuery, ['api_key']);
    const none = { ...testRequest({ headers: ['x-api-key', 'good'] }), path: '/a?x=1' };
    await svc(none);
    assert.equal(none.context.redactQuery, undefined, 'nothing to mask, nothing allocated');
  });

  it('a query key does not reach the upstream unless forward_key; the other parameters go on as sent', async () => {
    const seen: string[] = [];
    const terminal = async (req: { path: string }) => {
      seen.push(req.path);
      return { status: 200, headers: new HeaderList(), body: null };
    };
    const keys = loadKeys(apiKeyConfig.parse({ keys_env: [{ name: 'alice', env: 'K_TEST' }], query: 'api_key' }), { K_TEST: 'good' });
    const strip = apiKeyLayer(apiKeyConfig.parse({ keys_env: [{ name: 'alice', env: 'K_TEST' }], query: 'api_key' }), keys, () => new Counter())(terminal);
    await strip({ ...testRequest(), path: '/a?x=1&api_key=good&y=%20b&api%5Fkey=again' });
    await strip({ ...testRequest(), path: '/a?api_key=good' });
    const keep = apiKeyLayer(apiKeyConfig.parse({ keys_env: [{ name: 'alice', env: 'K_TEST' }], query: 'api_key', forward_key: true }), keys, () => new Counter())(terminal);
    await keep({ ...testRequest(), path: '/a?api_key=good' });
    assert.deepEqual(seen, ['/a?x=1&y=%20b', '/a', '/a?api_key=good']);
  });
});
