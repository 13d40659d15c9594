// Operator experience: SIGTERM drain with drain_delay, admin POST /drain /logging /reopen_logs /quit, SIGUSR1 log
// rotation, debug logging, ISO log time, error details hidden on non-loopback listeners, pass-through without mesh headers.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { curl } from '../helpers/client.js';
import { connectH2, h2Request } from '../helpers/proto-http.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest, sleep } from '../helpers/strict-net.js';
import { startUpstream } from '../helpers/upstream.js';

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const listener = (extra = ''): string => `
listeners:
  - name: in
    port: 0
${extra}    routes:
      - { name: version, match: { exact: /version }, direct_response: { status: 200, body: "v1" } }
      - { name: app, match: { prefix: / }, cluster: app }
`;

/** The exit code, or a failure when the process is still running after `ms`. */
async function exitedWithin(sc: RunningSidecar, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`still running after ${ms} ms:\n${sc.stderr()}`)), ms)));
  try {
    return await Promise.race([sc.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

const admin = (port: number, method: string, p: string): ReturnType<typeof httpRequest> => httpRequest(port, { method, path: p });

describe('operations: drain', () => {
  it('SIGTERM: /ready fails at once, new connections are accepted during drain_delay with Connection: close / GOAWAY, then refused; in-flight finishes; exit 0', async () => {
    let release: (() => void) | undefined;
    const up = await startUpstream((_req, res) => {
      release = () => res.end('finished');
    });
    const sc = await startSidecar(`drain_delay: 1500ms\ndrain_timeout: 5s\n${listener()}clusters:\n  - name: app\n    endpoints: ["${up.address}"]\n`);
    try {
      const port = sc.ports.in!;
      const inflight = httpRequest(port, { path: '/work' });
      await until(() => release !== undefined, 'the request to reach the upstream');
      const h2 = await connectH2(port); // connected before the drain: gets GOAWAY when it starts
      const goaway = new Promise<void>((resolve) => h2.once('goaway', () => resolve()));
      assert.equal((await admin(sc.adminPort, 'GET', '/ready')).status, 200);
      const signalledAt = Date.now();
      sc.proc.kill('SIGTERM');
      await until(() => /"msg":"draining/.test(sc.stderr()), 'the draining log line');
      assert.equal((await admin(sc.adminPort, 'GET', '/ready')).status, 503, '/ready fails at once');

      // A new connection during drain_delay is still served, and told to go away.
      const during = await httpRequest(port, { path: '/version' });
      assert.ok(Date.now() - signalledAt < 1500, 'still inside drain_delay');
      assert.equal(during.status, 200);
      assert.equal(during.body, 'v1');
      assert.equal(during.headers.connection, 'close');
      await goaway;
      const h2New = await connectH2(port);
      const h2GoAway = new Promise<void>((resolve) => h2New.once('goaway', () => resolve()));
      const h2Res = await h2Request(h2New, { ':path': '/version' });
      assert.equal(h2Res.status, 200, 'a new HTTP/2 connection during drain_delay gets its request served');
      await h2GoAway;
      h2New.destroy();
      h2.destroy();

      await until(() => /no longer accepting/.test(sc.stderr()), 'the end of drain_delay', 5000);
      assert.ok(Date.now() - signalledAt >= 1400, `drain_delay was kept (${Date.now() - signalledAt} ms)`);
      const refused = await curl(['-sS', '--max-time', '2', `http://127.0.0.1:${port}/new`]);
      assert.notEqual(refused.code, 0, 'after drain_delay new connections are refused');
      release!();
      const r = await inflight;
      assert.equal(r.status, 200);
      assert.equal(r.body, 'finished');
      assert.equal(await exitedWithin(sc, 10_000), 0);
    } finally {
      await sc.stop('SIGKILL');
      await up.close();
    }
  });

  it('a second SIGTERM cuts drain_delay short', async () => {
    const sc = await startSidecar(`drain_delay: 60s\n${listener()}clusters:\n  - name: app\n    endpoints: ["127.0.0.1:1"]\n`);
    try {
      sc.proc.kill('SIGTERM');
      await until(() => /"msg":"draining/.test(sc.stderr()), 'the draining log line');
      const t0 = Date.now();
      sc.proc.kill('SIGTERM');
      assert.equal(await exitedWithin(sc, 10_000), 0);
      assert.ok(Date.now() - t0 < 5000, 'exited well before drain_delay');
      assert.match(sc.stderr(), /drain_delay cut short/);
    } finally {
      await sc.stop('SIGKILL');
    }
  });

  it('admin: POST /drain fails /ready but keeps serving (Connection: close); POST /quit stops and exits 0; other methods 405', async () => {
    const sc = await startSidecar(`drain_delay: 200ms\n${listener()}clusters:\n  - name: app\n    endpoints: ["127.0.0.1:1"]\n`);
    try {
      for (const p of ['/drain', '/logging', '/reopen_logs', '/quit']) {
        const r = await admin(sc.adminPort, 'GET', p);
        assert.equal(r.status, 405, `GET ${p}`);
        assert.equal(r.headers.allow, 'POST');
      }
      assert.equal((await admin(sc.adminPort, 'POST', '/ready')).status, 405, 'views are GET only');
      assert.equal((await admin(sc.adminPort, 'POST', '/drain')).status, 200);
      assert.equal((await admin(sc.adminPort, 'GET', '/ready')).status, 503);
      await sleep(400); // longer than drain_delay: a drain without quit does not stop accepting
      const r = await httpRequest(sc.ports.in!, { path: '/version' });
      assert.equal(r.status, 200);
      assert.equal(r.headers.connection, 'close');
      assert.equal(sc.proc.exitCode, null, 'still running');
      const quit = await admin(sc.adminPort, 'POST', '/quit');
      assert.equal(quit.status, 200);
      assert.equal(await exitedWithin(sc, 10_000), 0);
      assert.match(sc.stderr(), /quit requested/);
    } finally {
      await sc.stop('SIGKILL');
    }
  });
});

describe('operations: logs', () => {
  it('SIGUSR1 and POST /reopen_logs: after a rename, new access-log lines go to a new file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sidecar-rotate-'));
    const file = path.join(dir, 'access.log');
    const sc = await startSidecar(`access_log: { path: ${file} }\n${listener()}clusters:\n  - name: app\n    endpoints: ["127.0.0.1:1"]\n`);
    const read = (f: string): string => {
      try {
        return readFileSync(f, 'utf8');
      } catch {
        return '';
      }
    };
    try {
      const port = sc.ports.in!;
      await httpRequest(port, { path: '/version?n=1' });
      await until(() => read(file).includes('n=1'), 'line 1 in access.log');
      renameSync(file, `${file}.1`);
      sc.proc.kill('SIGUSR1');
      await until(() => /access log reopened/.test(sc.stderr()), 'the reopen log line');
      await httpRequest(port, { path: '/version?n=2' });
      await until(() => read(file).includes('n=2'), 'line 2 in the new access.log');
      assert.ok(!read(`${file}.1`).includes('n=2'), 'the rotated file gets no new lines');
      assert.ok(!read(file).includes('n=1'));

      renameSync(file, `${file}.2`);
      assert.equal((await admin(sc.adminPort, 'POST', '/reopen_logs')).status, 200);
      await httpRequest(port, { path: '/version?n=3' });
      await until(() => read(file).includes('n=3'), 'line 3 in the newest access.log');
      assert.ok(!read(`${file}.2`).includes('n=3'));
    } finally {
      await sc.stop();
    }
  });

  it('POST /logging changes the level at runtime; debug logs connections; lines carry ISO time', async () => {
    const sc = await startSidecar(`${listener()}clusters:\n  - name: app\n    endpoints: ["127.0.0.1:1"]\n`);
    try {
      const port = sc.ports.in!;
      await httpRequest(port, { path: '/version' });
      await sleep(100);
      assert.doesNotMatch(sc.stderr(), /downstream connection/, 'info level: no debug lines');
      const bad = await admin(sc.adminPort, 'POST', '/logging?level=loud');
      assert.equal(bad.status, 400);
      assert.match(bad.body, /debug/);
      assert.equal((await admin(sc.adminPort, 'POST', '/logging?level=debug')).status, 200);
      assert.match((await admin(sc.adminPort, 'POST', '/logging')).body, /log level: debug/);
      await httpRequest(port, { path: '/version' });
      await until(() => /"msg":"downstream connection closed"/.test(sc.stderr()), 'a debug line per connection');
      assert.match(sc.stderr(), /"listener":"in","peer":"127\.0\.0\.1:\d+","draining":false,"msg":"downstream connection opened"/);
      for (const line of sc.stderr().trim().split('\n')) {
        const time = (JSON.parse(line) as { time: unknown }).time;
        assert.match(String(time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, line);
      }
      assert.equal((await admin(sc.adminPort, 'POST', '/logging?level=warn')).status, 200);
      const before = sc.stderr().length;
      await httpRequest(port, { path: '/version' });
      await sleep(100);
      assert.doesNotMatch(sc.stderr().slice(before), /downstream connection/);
    } finally {
      await sc.stop();
    }
  });

  it('log_level: debug logs more than info: listeners bound and connections', async () => {
    const sc = await startSidecar(`log_level: debug\n${listener()}clusters:\n  - name: app\n    endpoints: ["127.0.0.1:1"]\n`);
    try {
      assert.match(sc.stderr(), /"listener":"in".*"msg":"listener bound"/);
      await httpRequest(sc.ports.in!, { path: '/version' });
      await until(() => /"msg":"downstream connection closed"/.test(sc.stderr()), 'a connection debug line');
    } finally {
      await sc.stop();
    }
  });
});

describe('operations: no internal details to strangers', () => {
  it('a listener bound to 0.0.0.0 sends the flag and a generic cause; the access log keeps the address', async () => {
    // Port 1: nothing listens there, and (unlike a port just released) no other process on the machine can take it meanwhile.
    const dead = '127.0.0.1:1';
    const cfg = (address: string, expose = ''): string =>
      `${listener(`    address: "${address}"\n${expose}`)}clusters:\n  - name: app\n    endpoints: ["${dead}"]\n`;
    const open = await startSidecar(cfg('0.0.0.0'));
    try {
      const r = await httpRequest(open.ports.in!, { path: '/x' });
      assert.equal(r.status, 503);
      assert.equal(r.headers['x-sidecar-flag'], 'UF');
      assert.equal(r.headers['x-sidecar-error'], 'upstream connection failure');
      assert.ok(!r.body.includes(dead) && !JSON.stringify(r.headers).includes(dead), `no address in the answer: ${r.body}`);
      assert.ok(!r.body.includes('127.0.0.1'));
      const nr = await httpRequest(open.ports.in!, { path: '/version', method: 'POST' });
      assert.equal(nr.status, 200, 'direct responses are unaffected');
      const line = (await open.waitForAccessLog(1)).find((l) => l.path === '/x')!;
      assert.match(String(line.error), new RegExp(`refused by ${dead.replace(/\./g, '\\.')}`), 'full cause in the access log');
    } finally {
      await open.stop();
    }
    const loop = await startSidecar(cfg('127.0.0.1'));
    const opted = await startSidecar(cfg('0.0.0.0', '    expose_error_details: true\n'));
    try {
      for (const sc of [loop, opted]) {
        const r = await httpRequest(sc.ports.in!, { path: '/x' });
        assert.equal(r.status, 503);
        assert.match(String(r.headers['x-sidecar-error']), new RegExp(`refused by ${dead}`), 'loopback or opted in: full cause');
      }
    } finally {
      await loop.stop();
      await opted.stop();
    }
  });
});

describe('operations: forward pass-through to hosts outside the mesh', () => {
  const forward = (extra = ''): string => `
listeners:
  - name: out
    port: 0
    mode: forward
    forward:
      allow_passthrough: true
      allowed_hosts: ["localhost"]
${extra}    routes:
      - { name: mesh, match: { hosts: [mesh.internal] }, cluster: mesh }
`;
  const MESH_HEADERS = ['x-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-sidecar-timeout'];

  it('adds no Via, x-request-id, X-Forwarded-* or x-sidecar-timeout to pass-through requests; routed ones keep them; forward.passthrough_headers turns them on', async (t) => {
    const up = await startUpstream();
    t.after(() => up.close());
    const target = `http://localhost:${up.address.split(':')[1]}`;
    const plain = await startSidecar(`${forward()}clusters:\n  - name: mesh\n    endpoints: ["${up.address}"]\n`);
    try {
      const viaProxy = (sc: typeof plain, url: string, headers: Record<string, string> = {}): ReturnType<typeof httpRequest> =>
        httpRequest(sc.ports.out!, { path: url, headers: { host: new URL(url).host, ...headers } });
      assert.equal((await viaProxy(plain, `${target}/ext`)).status, 200);
      const ext = up.requests.find((r) => r.url === '/ext')!;
      for (const h of MESH_HEADERS) assert.equal(ext.headers[h], undefined, `pass-through carries ${h}: ${String(ext.headers[h])}`);
      assert.match(String(ext.headers.via), /^1\.1 [0-9a-f]{8}$/, 'Via: an opaque pseudonym (loops stay detectable), not the sidecar and listener');

      await viaProxy(plain, `${target}/ext-own`, { 'x-request-id': 'app-id', 'x-forwarded-for': '10.1.1.1', via: '1.1 app-proxy' });
      const own = up.requests.find((r) => r.url === '/ext-own')!;
      assert.equal(own.headers['x-request-id'], 'app-id', "the app's own headers pass");
      assert.equal(own.headers['x-forwarded-for'], '10.1.1.1');
      assert.match(String(own.headers.via), /^1\.1 app-proxy, 1\.1 [0-9a-f]{8}$/);

      await viaProxy(plain, 'http://mesh.internal/routed');
      const routed = up.requests.find((r) => r.url === '/routed')!;
      for (const h of ['via', 'x-request-id', 'x-forwarded-for', 'x-sidecar-timeout']) assert.ok(routed.headers[h] !== undefined, `routed request carries ${h}`);
    } finally {
      await plain.stop();
    }
    const on = await startSidecar(`${forward('      passthrough_headers: { via: true, request_id: true, forwarded: true, timeout: true }\n')}clusters:\n  - name: mesh\n    endpoints: ["${up.address}"]\n`);
    try {
      await httpRequest(on.ports.out!, { path: `${target}/ext-on`, headers: { host: new URL(target).host } });
      const ext = up.requests.find((r) => r.url === '/ext-on')!;
      for (const h of MESH_HEADERS) assert.ok(ext.headers[h] !== undefined, `configured: pass-through carries ${h}`);
      assert.match(String(ext.headers.via), /^1\.1 sidecar-[0-9a-f]{8}\.out$/);
    } finally {
      await on.stop();
    }
  });
});

