// The admin token: reading from a file or env, and the bearer check.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { checkBearer, loadAdminToken } from './admin-token.js';

describe('admin token', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'admin-token-'));
  it('no token configured: undefined', () => assert.equal(loadAdminToken({}), undefined));

  it('a file token (trailing newline dropped) and an env token check the same', () => {
    const file = path.join(dir, 'token');
    writeFileSync(file, 's3cret-Token\n');
    const fromFile = loadAdminToken({ token_file: file })!;
    const fromEnv = loadAdminToken({ token_env: 'T' }, { T: 's3cret-Token' })!;
    assert.deepEqual(fromFile, fromEnv);
    assert.equal(checkBearer('Bearer s3cret-Token', fromFile), 'ok');
    assert.equal(checkBearer('bearer s3cret-Token', fromFile), 'ok', 'the scheme is case-insensitive');
    assert.equal(checkBearer('Bearer s3cret-Token-and-more', fromFile), 'invalid');
    assert.equal(checkBearer('Bearer s', fromFile), 'invalid', 'a shorter token compares without throwing');
    assert.equal(checkBearer('Basic czNjcmV0', fromFile), 'missing');
    assert.equal(checkBearer('Bearer', fromFile), 'missing');
    assert.equal(checkBearer(undefined, fromFile), 'missing');
  });

  it('a missing or empty file, an unset or empty variable: an error naming the key', () => {
    assert.throws(() => loadAdminToken({ token_file: path.join(dir, 'nope') }), /admin\.token_file: cannot read .*nope: no such file/);
    const empty = path.join(dir, 'empty');
    writeFileSync(empty, '\n');
    assert.throws(() => loadAdminToken({ token_file: empty }), /admin\.token_file: .*empty is empty/);
    assert.throws(() => loadAdminToken({ token_env: 'NOPE' }, {}), /admin\.token_env: the environment variable NOPE is not set/);
    assert.throws(() => loadAdminToken({ token_env: 'E' }, { E: ' ' }), /the environment variable E is empty/);
  });
});
