// The `sidecar` command line: validate, schema, help, version, exit codes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BIN, ROOT, startSidecar } from '../helpers/sidecar.js';

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function tmpFile(text: string): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'sidecar-cli-')), 'sidecar.yaml');
  writeFileSync(file, text);
  return file;
}

describe('cli', () => {
  it('validate: exit 0 and a one-line summary for a valid file', async () => {
    const r = await run(['validate', '-c', path.join(ROOT, 'examples/demo/server-sidecar.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^.*server-sidecar\.yaml: valid \(1 listeners, 4 routes, 2 clusters\)\n$/);
  });

  it('every example config validates', async () => {
    const { readdirSync } = await import('node:fs');
    const dir = path.join(ROOT, 'examples');
    // otel-*.yaml are configs of other programs the examples run beside the sidecar (an OpenTelemetry Collector).
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.yaml') && !path.basename(f).startsWith('otel-'));
    assert.ok(files.length >= 4);
    // The mtls example reads certificates from ${CERTS}; its script makes them with `sidecar certs`.
    const certs = path.join(mkdtempSync(path.join(os.tmpdir(), 'sidecar-cli-')), 'certs');
    await new Promise<void>((resolve, reject) =>
      execFile('bash', [path.join(dir, 'mtls/make-certs.sh'), certs], (err, _o, stderr) => (err ? reject(new Error(stderr)) : resolve())),
    );
    for (const f of files) {
      const r = await run(['validate', '-c', path.join(dir, f)], { CERTS: certs });
      assert.equal(r.code, 0, `${f}: ${r.stderr}`);
    }
  });

  it('validate: exit 2 with FILE:LINE:COL path: message for every error', async () => {
    const file = tmpFile('listeners:\n  - name: a\n    prot: 1\n    port: 80\nclusterz: []\n');
    const r = await run(['validate', '-c', file]);
    assert.equal(r.code, 2);
    assert.deepEqual(r.stderr.trim().split('\n'), [
      `${file}:3:5 listeners[0].prot: unknown key "prot"; did you mean "port"?`,
      `${file}:5:1 clusterz: unknown key "clusterz"; did you mean "clusters"?`,
    ]);
  });

  it('validate: a missing file is exit 2 with a message', async () => {
    const r = await run(['validate', '-c', '/nonexistent/sidecar.yaml']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, '/nonexistent/sidecar.yaml:1:1 (root): cannot read config: no such file\n');
  });

  it('run with an invalid file exits 2 without listening', async () => {
    const r = await run(['run', '-c', tmpFile('listeners: 3\n')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /:1:12 listeners: expected array/);
  });

  it('validate FILE as a plain argument; every error once, syntax errors with the line and a caret', async () => {
    const ok = await run(['validate', path.join(ROOT, 'examples/basic/sidecar.yaml')]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /basic\/sidecar\.yaml: valid \(1 listeners, 2 routes, 1 clusters\)\n$/);
    const xref = tmpFile('listeners:\n  - { name: a, port: 9000, routes: [{ cluster: ap }] }\n  - { name: b, port: 9000 }\nclusters: [{ name: app, endpoints: ["127.0.0.1:1"] }, { name: app, endpoints: ["127.0.0.1:2"] }]\n');
    const bad = await run(['validate', xref]);
    assert.equal(bad.code, 2);
    assert.deepEqual(bad.stderr.trim().split('\n'), [
      `${xref}:2:48 listeners[0].routes[0].cluster: unknown cluster "ap"; did you mean "app"?`,
      `${xref}:3:22 listeners[1].port: 127.0.0.1:9000 is already used by listener "a"; two servers cannot listen on one address and port`,
      `${xref}:4:63 clusters[1].name: duplicate cluster "app"`,
    ]);
    const syntax = tmpFile('listeners:\n  - name: a\n     port: 1\n');
    const s = await run(['validate', syntax]);
    assert.equal(s.code, 2);
    assert.equal(
      s.stderr,
      `${syntax}:3:6 listeners[0].name: this line is indented deeper than the key above it, so it reads as part of that value; line it up with the keys above it\n         port: 1\n         ^\n`,
    );
    const twice = await run(['validate', syntax, '-c', xref]);
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /give the file once/);
  });

  it('validate: an empty file or one without listeners is an error; a shadowed route is a warning with exit 0', async () => {
    const empty = await run(['validate', tmpFile('')]);
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /:1:1 \(root\): the file is empty: a config needs at least one listener\n$/);
    const none = await run(['validate', tmpFile('admin: { port: 0 }\nlisteners: []\n')]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /:2:1 listeners: no listeners/);
    const shadow = tmpFile('listeners:\n  - name: a\n    port: 9000\n    routes:\n      - { match: { prefix: / }, cluster: c }\n      - { match: { exact: /x }, cluster: c }\nclusters: [{ name: c, endpoints: ["127.0.0.1:1"] }]\n');
    const w = await run(['validate', shadow]);
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stdout, /valid \(1 listeners, 2 routes, 1 clusters, 1 warning\)/);
    assert.equal(w.stderr, `${shadow}:6:9 listeners[0].routes[1]: warning: this route can never match: routes[0] before it takes every request it would match (first match wins)\n`);
  });

  it('run --check validates and exits 0 or 2 without binding; port overrides for the embedded default', async () => {
    const good = await run(['run', '--check', '-c', path.join(ROOT, 'examples/basic/sidecar.yaml')]);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /valid \(1 listeners, 2 routes, 1 clusters\)/);
    const bad = await run(['run', '--check', '-c', tmpFile('listeners:\n  - { name: a, port: 70000 }\n')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /:2:22 listeners\[0\]\.port: port 70000 is above 65535\n$/);
    const embedded = await run(['run', '--check']);
    assert.equal(embedded.code, 0, embedded.stderr);
    assert.equal(embedded.stdout, '(embedded default): valid (2 listeners, 1 routes, 1 clusters)\n');
    // The override is the port the config gets: on the inbound port, the admin server clashes with it.
    const clash = await run(['run', '--check', '--admin-port', '15006']);
    assert.equal(clash.code, 2);
    assert.match(clash.stderr, /^\(embedded default\):8:11 listeners\[0\]\.port: 127\.0\.0\.1:15006 is already used by the admin server/);
    const outOfRange = await run(['run', '--check', '--inbound-port', '70000']);
    assert.equal(outOfRange.code, 2);
    assert.match(outOfRange.stderr, /--inbound-port expects a port number from 0 to 65535, got "70000"/);
    const withFile = await run(['run', '--check', '--admin-port', '1', '-c', path.join(ROOT, 'examples/basic/sidecar.yaml')]);
    assert.equal(withFile.code, 2);
    assert.match(withFile.stderr, /--admin-port applies to the embedded default only/);
    const notRun = await run(['validate', '--check', path.join(ROOT, 'examples/basic/sidecar.yaml')]);
    assert.equal(notRun.code, 2);
  });

  it('run with --inbound-port/--outbound-port/--admin-port/--app-address serves on those ports', async () => {
    const { createServer } = await import('node:http');
    const app = createServer((_req, res) => res.end('from app')).listen(0, '127.0.0.1');
    await new Promise((r) => app.once('listening', r));
    const appPort = (app.address() as { port: number }).port;
    const free = async (): Promise<number> => {
      const s = createServer().listen(0, '127.0.0.1');
      await new Promise((r) => s.once('listening', r));
      const p = (s.address() as { port: number }).port;
      await new Promise((r) => s.close(r));
      return p;
    };
    const [inbound, outbound, admin] = [await free(), await free(), await free()];
    const { spawn } = await import('node:child_process');
    const args = ['run', '--inbound-port', String(inbound), '--outbound-port', String(outbound), '--admin-port', String(admin), '--app-address', `127.0.0.1:${appPort}`];
    const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise((r) => proc.once('exit', r));
    let err = '';
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`did not start:\n${err}`)), 15_000);
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`exited before starting:\n${err}`));
        });
        proc.stderr.on('data', () => {
          if (err.includes('"sidecar started"')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      const body = await (await fetch(`http://127.0.0.1:${inbound}/`)).text();
      assert.equal(body, 'from app');
      assert.equal((await fetch(`http://127.0.0.1:${admin}/ready`)).status, 200);
      assert.match(err, new RegExp(`outbound forward http://127\\.0\\.0\\.1:${outbound}`));
    } finally {
      proc.kill('SIGTERM');
      await exited;
      app.close();
    }
  });

  it('the reload-rejected log line lists each cross-reference error once', async () => {
    const valid = 'listeners:\n  - { name: a, port: 0, routes: [{ cluster: app }] }\nclusters: [{ name: app, endpoints: ["127.0.0.1:1"] }]\n';
    const sc = await startSidecar(valid);
    try {
      sc.writeConfig('watch: false\nlisteners:\n  - { name: a, port: 0, routes: [{ cluster: ap }] }\nclusters: [{ name: app, endpoints: ["127.0.0.1:1"] }, { name: app, endpoints: ["127.0.0.1:2"] }]\n');
      sc.proc.kill('SIGHUP');
      const end = Date.now() + 10_000;
      while (!sc.stderr().includes('config reload rejected')) {
        assert.ok(Date.now() < end, `no rejected reload:\n${sc.stderr()}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      const line = sc.stderr().split('\n').find((l) => l.includes('config reload rejected'))!;
      const issues = (JSON.parse(line) as { issues: string[] }).issues.map((i) => i.replace(/^.*sidecar\.yaml:/, ''));
      assert.deepEqual(issues, ['4:45 listeners[0].routes[0].cluster: unknown cluster "ap"; did you mean "app"?', '5:63 clusters[1].name: duplicate cluster "app"']);
    } finally {
      await sc.stop();
    }
  });

  it('schema prints a JSON Schema that rejects unknown keys', async () => {
    const r = await run(['schema']);
    assert.equal(r.code, 0);
    const schema = JSON.parse(r.stdout) as { $schema: string; properties: Record<string, unknown>; additionalProperties: boolean };
    assert.match(schema.$schema, /json-schema\.org/);
    assert.ok('listeners' in schema.properties && 'clusters' in schema.properties);
    assert.equal(schema.additionalProperties, false);
  });

  it('--help on every command, --version, and unknown commands', async () => {
    for (const cmd of [[], ['run'], ['validate'], ['schema']]) {
      const r = await run([...cmd, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /Usage: sidecar/);
    }
    const v = await run(['--version']);
    assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
    const bad = await run(['frobnicate']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command "frobnicate"/);
    const badFlag = await run(['run', '--nope']);
    assert.equal(badFlag.code, 2);
    const none = await run([]);
    assert.equal(none.code, 2, 'no command is a usage error');
    assert.match(none.stderr, /a command is required[\s\S]*Usage: sidecar/);
  });
});
