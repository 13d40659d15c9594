// Admin hardening: a bearer token (file or env) guards every admin endpoint but /ready and /live; real HTTP requests.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BIN, startSidecar } from '../helpers/sidecar.js';
import { httpRequest, type HttpResult } from '../helpers/strict-net.js';

async function until(check: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

const LISTENER = `listeners:
  - name: in
    port: 0
    routes: [{ name: ok, match: { prefix: / }, direct_response: { status: 200, body: "ok" } }]
`;

const admin = (port: number, pathname: string, token?: string, method = 'GET'): Promise<HttpResult> =>
  httpRequest(port, { method, path: pathname, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });

function tokenFile(text: string): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'sidecar-admin-token-')), 'token');
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

describe('admin token', () => {
  it('token_file: /ready and /live open; every other view and operation 401 without or with a wrong token, 200 with it', async () => {
    const file = tokenFile('first-token-1234\n');
    const sc = await startSidecar(`admin: { port: 0, token_file: ${file} }\n${LISTENER}`);
    try {
      const p = sc.adminPort;
      assert.equal((await admin(p, '/ready')).status, 200);
      assert.equal((await admin(p, '/live')).status, 200);
      for (const [pathname, method] of [['/config', 'GET'], ['/clusters', 'GET'], ['/metrics', 'GET'], ['/', 'GET'], ['/nothing-here', 'GET'], ['/logging', 'POST'], ['/drain', 'POST']] as const) {
        const none = await admin(p, pathname, undefined, method);
        assert.equal(none.status, 401, `${method} ${pathname} without a token`);
        assert.equal(none.headers['www-authenticate'], 'Bearer realm="sidecar admin"');
        assert.match(none.body, /needs "Authorization: Bearer <token>"/);
        const wrong = await admin(p, pathname, 'first-token-123', method);
        assert.equal(wrong.status, 401, `${method} ${pathname} with a wrong token`);
        assert.equal(wrong.headers['www-authenticate'], 'Bearer realm="sidecar admin", error="invalid_token"');
        assert.match(wrong.body, /the bearer token is wrong/);
      }
      const basic = await httpRequest(p, { path: '/metrics', headers: { authorization: 'Basic Zmlyc3QtdG9rZW4tMTIzNA==' } });
      assert.equal(basic.status, 401);
      const metrics = await admin(p, '/metrics', 'first-token-1234');
      assert.equal(metrics.status, 200);
      assert.match(metrics.body, /sidecar_config_last_reload_successful 1/);
      assert.equal((await admin(p, '/clusters', 'first-token-1234')).status, 200);
      assert.equal((await admin(p, '/logging', 'first-token-1234', 'POST')).status, 200);
      assert.equal((await admin(p, '/nothing-here', 'first-token-1234')).status, 404);
      const cfg = await admin(p, '/config', 'first-token-1234');
      assert.equal(cfg.status, 200);
      assert.ok(!cfg.body.includes('first-token-1234'), '/config never shows the token');
      assert.match(cfg.body, new RegExp(`"token_file": "${file.replace(/[/.]/g, '\\$&')}"`), 'where the token lives is shown');
    } finally {
      await sc.stop();
    }
  });

  it('the token is re-read on reload (SIGHUP); a reload that cannot read it keeps the old token in force', async () => {
    const file = tokenFile('old-token');
    const sc = await startSidecar(`admin: { port: 0, token_file: ${file} }\n${LISTENER}`);
    try {
      const p = sc.adminPort;
      assert.equal((await admin(p, '/metrics', 'old-token')).status, 200);
      writeFileSync(file, 'new-token\n');
      sc.proc.kill('SIGHUP');
      await until(async () => (await admin(p, '/metrics', 'new-token')).status === 200);
      assert.equal((await admin(p, '/metrics', 'old-token')).status, 401, 'the old token no longer works');

      rmSync(file);
      sc.proc.kill('SIGHUP');
      await until(() => /config reload rejected/.test(sc.stderr()));
      assert.match(sc.stderr(), /sidecar\.yaml:1:\d+ admin\.token_file: cannot read .*token: no such file/);
      assert.equal((await admin(p, '/metrics', 'new-token')).status, 200, 'the token in force stays');
      assert.equal((await admin(p, '/metrics')).status, 401, 'and still guards the admin server');
    } finally {
      await sc.stop();
    }
  });

  it('token_env: the token from an environment variable', async () => {
    const sc = await startSidecar(`admin: { port: 0, token_env: SIDECAR_TEST_ADMIN_TOKEN }\n${LISTENER}`, { env: { SIDECAR_TEST_ADMIN_TOKEN: 'from-the-env' } });
    try {
      assert.equal((await admin(sc.adminPort, '/config')).status, 401);
      const cfg = await admin(sc.adminPort, '/config', 'from-the-env');
      assert.equal(cfg.status, 200);
      assert.ok(!cfg.body.includes('from-the-env'));
      assert.match(cfg.body, /"token_env": "SIDECAR_TEST_ADMIN_TOKEN"/);
      assert.equal((await admin(sc.adminPort, '/live')).status, 200);
    } finally {
      await sc.stop();
    }
  });

  it('without a token configured the admin server stays open (the default)', async () => {
    const sc = await startSidecar(LISTENER);
    try {
      assert.equal((await admin(sc.adminPort, '/config')).status, 200);
      assert.equal((await admin(sc.adminPort, '/metrics')).status, 200);
    } finally {
      await sc.stop();
    }
  });

  it('start and validate: a missing or empty token file is a config error at its YAML line; an unset variable stops the start; both keys set is a config error', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sidecar-admin-token-'));
    const run = (yaml: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stderr: string }> => {
      const file = path.join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(file, yaml);
      return new Promise((resolve) => {
        execFile(process.execPath, [BIN, 'run', '-c', file], { encoding: 'utf8', timeout: 15_000, env: { ...process.env, ...env } }, (err, _o, stderr) =>
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
        );
      });
    };
    const missing = await run(`admin: { port: 0, token_file: ${dir}/absent }\n${LISTENER}`);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /\.yaml:1:\d+ admin\.token_file: cannot read .*absent: no such file/);
    const emptyFile = path.join(dir, 'empty-token');
    writeFileSync(emptyFile, '\n');
    const validate = await new Promise<{ code: number; stderr: string }>((resolve) => {
      const file = path.join(dir, 'validate.yaml');
      writeFileSync(file, `admin: { port: 0, token_file: ${emptyFile} }\n${LISTENER}`);
      execFile(process.execPath, [BIN, 'validate', file], { encoding: 'utf8', timeout: 15_000 }, (err, _o, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }));
    });
    assert.equal(validate.code, 2, 'validate checks the token file');
    assert.match(validate.stderr, /validate\.yaml:1:\d+ admin\.token_file: .*empty-token is empty/);
    const unset = await run(`admin: { port: 0, token_env: SIDECAR_TEST_UNSET_TOKEN }\n${LISTENER}`);
    assert.notEqual(unset.code, 0);
    assert.match(unset.stderr, /the environment variable SIDECAR_TEST_UNSET_TOKEN is not set/);
    const both = await run(`admin: { port: 0, token_file: /x, token_env: Y }\n${LISTENER}`);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /admin\.token_env: set token_file or token_env, not both/);
  });
});
