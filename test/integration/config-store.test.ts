// Config from a store, against a real etcd: `sidecar config push` refuses an invalid file and publishes a valid one;
// a sidecar with config_source applies the key's routes and clusters through its reload path with no failed request,
// keeps the last good config when the key turns invalid (the error names the key and line) or the store goes away;
// config_sync writes keys as files (atomic, with their mode) and calls the app.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { metricsText } from '../helpers/admin.js';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { BIN, startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest, sleep } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

async function eventually(cond: () => Promise<boolean> | boolean, what: string, timeoutMs = 8000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const KEY = '/sidecar/config/web';

describe('config from etcd: push, config_source, config_sync', () => {
  let etcd: TestEtcd;
  let client: Etcd3;
  let u1: TestUpstream;
  let u2: TestUpstream;
  let sidecar: RunningSidecar;
  let port: number;
  let dir: string;
  const notified: string[] = [];
  let appHook: http.Server;
  let signalled: ChildProcess;
  let hups = 0;

  const storeDoc = (cluster: string, upstream: TestUpstream): string => `# routes and clusters of the web tier
listeners:
  - name: in
    port: ${port}
    routes:
      - match: { prefix: / }
        cluster: ${cluster}
clusters:
  - name: ${cluster}
    endpoints: ["${upstream.address}"]
`;
  const push = (file: string, text: string): { status: number | null; stdout: string; stderr: string } => {
    fs.writeFileSync(file, text);
    const r = spawnSync(process.execPath, [BIN, 'config', 'push', '-c', file, '--etcd', etcd.url, '--key', KEY], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  before(async () => {
    etcd = await startEtcd();
    client = new Etcd3({ hosts: etcd.url });
    u1 = await startUpstream((_q, res) => reply(res, 200, 'one\n'));
    u2 = await startUpstream((_q, res) => setTimeout(() => reply(res, 200, 'two\n'), 5));
    port = await freePort();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidecar-store-'));
    appHook = http.createServer((req, res) => {
      notified.push(`${req.method} ${req.url}`);
      res.end('ok');
    });
    await new Promise<void>((r) => appHook.listen(0, '127.0.0.1', r));
    // An app that rereads its files on SIGHUP: it says so on stdout.
    signalled = spawn(process.execPath, ['-e', "process.on('SIGHUP', () => console.log('hup')); console.log('up'); setInterval(() => {}, 1000);"], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => signalled.stdout!.once('data', () => resolve()));
    signalled.stdout!.on('data', (d: Buffer) => (hups += (d.toString().match(/hup/g) ?? []).length));
    fs.writeFileSync(path.join(dir, 'app.pid'), `${signalled.pid}\n`);
    sidecar = await startSidecar(`
config_source:
  etcd: { endpoints: ["${etcd.url}"], key: ${KEY}, timeout: 500ms }
config_sync:
  endpoints: ["${etcd.url}"]
  directory: ${path.join(dir, 'shared')}
  files:
    - { key: /app/flags, path: flags.json, mode: "0640" }
  notify:
    http: { url: "http://127.0.0.1:${(appHook.address() as AddressInfo).port}/reload" }
    signal: { pid_file: ${path.join(dir, 'app.pid')}, signal: SIGHUP }
listeners:
  - name: in
    port: ${port}
    routes:
      - match: { prefix: / }
        cluster: boot
clusters:
  - name: boot
    endpoints: ["${u1.address}"]
`);
  });

  after(async () => {
    await sidecar?.stop();
    client?.close();
    await u1?.close();
    await u2?.close();
    await new Promise<void>((r) => appHook.close(() => r()));
    signalled?.kill('SIGKILL');
    await etcd?.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('push refuses an invalid file (naming the key and line) and writes nothing', async () => {
    const bad = push(path.join(dir, 'bad.yaml'), `listeners:\n  - name: in\n    port: ${port}\n    routes:\n      - match: { prefix: / }\n        cluster: nowhere\n`);
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, new RegExp(`etcd:${KEY}:6:\\d+ .*nowhere`));
    assert.match(bad.stderr, /nothing was published/);
    assert.equal(await client.get(KEY).string(), null);
    const fileOnly = push(path.join(dir, 'admin.yaml'), 'admin: { port: 1 }\n');
    assert.equal(fileOnly.status, 2);
    assert.match(fileOnly.stderr, /admin can only be set in the bootstrap file/);
    const good = path.join(dir, 'unreachable.yaml');
    fs.writeFileSync(good, storeDoc('web', u2));
    const away = spawnSync(process.execPath, [BIN, 'config', 'push', '-c', good, '--etcd', 'http://127.0.0.1:1', '--key', KEY], { encoding: 'utf8' });
    assert.equal(away.status, 1, away.stderr);
    assert.match(away.stderr, /cannot publish to http:\/\/127\.0\.0\.1:1/);
  });

  it('a pushed config is applied through the reload path under load with zero failed requests', async () => {
    assert.equal((await httpRequest(port, { path: '/' })).body, 'one\n', 'the bootstrap file serves until the key exists');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const statuses = new Map<string, number>();
    let stop = false;
    const worker = async (): Promise<void> => {
      while (!stop) {
        let k: string;
        try {
          const r = await httpRequest(port, { path: '/', agent, timeoutMs: 5000 });
          k = `${r.status} ${r.body.trim()}`;
        } catch (err) {
          k = `error ${(err as Error).message}`;
        }
        statuses.set(k, (statuses.get(k) ?? 0) + 1);
        await sleep(5);
      }
    };
    const workers = [worker(), worker(), worker(), worker()];
    await sleep(300);
    const ok = push(path.join(dir, 'good.yaml'), storeDoc('web', u2));
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /published to \/sidecar\/config\/web at revision \d+/);
    await eventually(async () => (await httpRequest(port, { path: '/' })).body === 'two\n', 'the store config to apply');
    await sleep(300);
    stop = true;
    await Promise.all(workers);
    agent.destroy();
    assert.deepEqual([...statuses.keys()].filter((k) => !/^200 (one|two)$/.test(k)), [], `every request succeeded: ${JSON.stringify([...statuses])}`);
    assert.ok((statuses.get('200 two') ?? 0) > 0 && (statuses.get('200 one') ?? 0) > 0);
  });

  it('keeps the last good config when the key turns invalid or the store goes away', async () => {
    await client.put(KEY).value(`listeners:\n  - name: in\n    port: ${port}\n    routes:\n      - match: { prefix: / }\n        cluster: web\nclusters:\n  - name: web\n    endpoints: ["not-an-address"]\n`);
    await eventually(async () => {
      const state = JSON.parse((await httpRequest(sidecar.adminPort, { path: '/clusters' })).body) as { config_source?: { last_error: string | null } };
      return state.config_source?.last_error?.includes(`etcd:${KEY}:9:`) === true;
    }, 'the invalid document to be refused, naming key and line');
    assert.equal((await httpRequest(port, { path: '/' })).body, 'two\n', 'the last good config serves');
    assert.match(sidecar.stderr(), /config reload rejected/);
    await etcd.stop();
    await eventually(async () => /sidecar_config_store_errors_total\{reason="unavailable"\} [1-9]/.test(await metricsText(sidecar.adminPort)), 'the outage to be counted');
    assert.equal((await httpRequest(port, { path: '/' })).body, 'two\n', 'still serving while the store is away');
    await etcd.start();
    client.close();
    client = new Etcd3({ hosts: etcd.url });
    await client.put(KEY).value(storeDoc('web2', u1));
    await eventually(async () => (await httpRequest(port, { path: '/' })).body === 'one\n', 'a change after the outage to apply (resync)', 10_000);
  });

  it('config_sync writes a key as a file atomically with its mode, calls and signals the app, and removes it when deleted', async () => {
    const file = path.join(dir, 'shared', 'flags.json');
    await client.put('/app/flags').value('{"beta": true}\n');
    await eventually(() => fs.existsSync(file), 'the file');
    assert.equal(fs.readFileSync(file, 'utf8'), '{"beta": true}\n');
    assert.equal(fs.statSync(file).mode & 0o777, 0o640);
    await eventually(() => notified.length === 1, 'the app to be told');
    assert.equal(notified[0], 'POST /reload');
    await eventually(() => hups === 1, 'the app to get its SIGHUP');
    await client.put('/app/flags').value('{"beta": false}\n');
    await eventually(() => fs.readFileSync(file, 'utf8') === '{"beta": false}\n', 'the update');
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['flags.json'], 'no temp file left behind');
    await client.delete().key('/app/flags');
    await eventually(() => !fs.existsSync(file), 'the file to go with its key');
  });
});
