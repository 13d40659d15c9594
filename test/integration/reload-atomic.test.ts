// Reloads are all or nothing: half-written and empty files are not applied, a failed apply changes nothing (admin
// included), no reload ends the process, /ready follows the data plane, and reloads under load fail no request.
import assert from 'node:assert/strict';
import { closeSync, openSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { describe, it } from 'node:test';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { freePort, startUpstream } from '../helpers/upstream.js';

const config = (adminPort: number, upstream: string, body: string, extra = ''): string => `admin: { port: ${adminPort} }
access_log: { enabled: false }
drain_timeout: 2s
${extra}listeners:
  - name: in
    port: 0
    routes:
      - { name: version, match: { exact: /version }, direct_response: { status: 200, body: "${body}" } }
      - { name: app, match: { prefix: / }, cluster: app }
clusters:
  - name: app
    endpoints: ["${upstream}"]
`;

interface Reply {
  status: number;
  body: string;
}

function get(port: number, path: string, agent: http.Agent | false = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

const version = (port: number): Promise<string> => get(port, '/version').then((r) => r.body, (err: Error) => `error: ${err.message}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 8000, sc?: RunningSidecar): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not in time: ${what}${sc ? `\n${sc.stderr()}` : ''}`);
    await sleep(25);
  }
}

/** Like `>` in a shell: truncates the file, then writes it, in chunks with a pause between when asked. */
async function writeInPlace(file: string, chunks: string[], pauseMs: number): Promise<void> {
  const fd = openSync(file, 'w');
  try {
    for (const [i, chunk] of chunks.entries()) {
      if (i > 0 || chunks.length === 1) await sleep(pauseMs);
      writeSync(fd, chunk);
    }
  } finally {
    closeSync(fd);
  }
}

/** Like an editor or a ConfigMap update: a new file renamed over the old one. */
function writeAtomically(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

/** Steady load: keep-alive clients and clients opening a new connection per request, each at about `perClientRps`. */
function startLoad(port: number, perClientRps: number): { stop(): Promise<{ done: number; failed: string[] }> } {
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const failed: string[] = [];
  let done = 0;
  let stopped = false;
  const loop = async (agent: http.Agent | false): Promise<void> => {
    while (!stopped) {
      const started = Date.now();
      const r = await get(port, '/load', agent).catch((err: Error) => ({ status: 0, body: err.message }));
      done++;
      if (r.status !== 200) failed.push(`${r.status} ${r.body.slice(0, 120)}`);
      await sleep(Math.max(0, 1000 / perClientRps - (Date.now() - started)));
    }
  };
  const loops = [loop(keepAlive), loop(keepAlive), loop(new http.Agent({ keepAlive: true, maxSockets: 1 })), loop(false), loop(false), loop(false)];
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      keepAlive.destroy();
      return { done, failed };
    },
  };
}

const exited = (sc: RunningSidecar): boolean => sc.proc.exitCode !== null || sc.proc.signalCode !== null;
const metric = async (sc: RunningSidecar, pattern: RegExp): Promise<boolean> => pattern.test((await get(sc.adminPort, '/metrics')).body);

describe('reload: all or nothing', () => {
  it('an in-place save caught empty or half-written is never applied; an empty or listener-less file is refused and counted', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const admin = await freePort();
    const sc = await startSidecar(config(admin, up.address, 'v1'));
    const port = sc.ports.in!;
    const load = startLoad(port, 50);
    try {
      // Truncated, then written 300 ms later (a slow generator behind `>`): the empty file is never applied.
      await writeInPlace(sc.configPath, [config(admin, up.address, 'v2')], 300);
      await until('v2 in force', async () => (await version(port)) === 'v2');
      // The head of the file first (admin, no listeners yet), the rest 300 ms later.
      const v3 = config(admin, up.address, 'v3');
      const cut = v3.indexOf('listeners:');
      await writeInPlace(sc.configPath, [v3.slice(0, cut), v3.slice(cut)], 300);
      await until('v3 in force', async () => (await version(port)) === 'v3');
      const { done, failed } = await load.stop();
      assert.deepEqual(failed, [], `${failed.length} of ${done} requests failed`);

      // A file that stays empty is refused, logged and counted; the listener keeps serving.
      writeFileSync(sc.configPath, '');
      await until('empty file refused', () => metric(sc, /sidecar_config_reload_failures_total\{reason="empty_file"\} 1/));
      assert.match(sc.stderr(), /"cause":"empty_file".*config reload refused; the previous config stays in force/);
      assert.equal(await version(port), 'v3');
      // A file that parses to no listeners while one serves is refused too.
      writeFileSync(sc.configPath, `admin: { port: ${admin} }\n# listeners to follow\n`);
      await until('no-listener file refused', () => metric(sc, /sidecar_config_reload_failures_total\{reason="no_listeners"\} 1/));
      assert.equal(await version(port), 'v3');
      assert.ok(await metric(sc, /sidecar_config_reloads_total\{result="failure"\} 2/));
      assert.ok(await metric(sc, /sidecar_config_last_reload_successful 0/));
      assert.equal((await get(admin, '/ready')).status, 200);
    } finally {
      await load.stop();
      await sc.stop();
      await up.close();
    }
  });

  it('a reload whose admin port cannot be bound changes nothing: old routes, old admin; a free one moves admin', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const admin = await freePort();
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as net.AddressInfo).port;
    const sc = await startSidecar(config(admin, up.address, 'v1'));
    const port = sc.ports.in!;
    try {
      writeAtomically(sc.configPath, config(taken, up.address, 'v2'));
      sc.proc.kill('SIGHUP');
      await until('apply failure logged', () => /config reload failed while applying/.test(sc.stderr()));
      assert.match(sc.stderr(), /EADDRINUSE/);
      assert.equal(await version(port), 'v1', 'the new routes are not live');
      assert.equal((await get(admin, '/ready')).status, 200, 'the old admin server still answers');
      const cfg = JSON.parse((await get(admin, '/config')).body) as { config: { admin: { port: number } } };
      assert.equal(cfg.config.admin.port, admin, '/config shows the config in force');
      assert.ok(await metric(sc, /sidecar_config_reload_failures_total\{reason="apply"\} 1/));

      const moved = await freePort();
      writeAtomically(sc.configPath, config(moved, up.address, 'v3'));
      sc.proc.kill('SIGHUP');
      await until('v3 in force', async () => (await version(port)) === 'v3');
      assert.equal((await get(moved, '/ready')).status, 200, 'admin answers on its new port');
      await until('old admin port closed', () => get(admin, '/ready').then(() => false, () => true));
      assert.equal(sc.proc.exitCode, null);
    } finally {
      await sc.stop();
      await up.close();
      blocker.close();
    }
  });

  it('a listener may take the admin server\'s old port as the admin moves; when the move fails both are back where they were', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const [adminA, adminB, listenerPort] = [await freePort(), await freePort(), await freePort()];
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as net.AddressInfo).port;
    const at = (admin: number, port: number, body: string): string => config(admin, up.address, body).replace('port: 0', `port: ${port}`);
    const sc = await startSidecar(at(adminA, listenerPort, 'v1'));
    try {
      // The admin server moves to a port that is taken, the listener onto the admin's port: nothing changes.
      writeAtomically(sc.configPath, at(taken, adminA, 'v2'));
      sc.proc.kill('SIGHUP');
      await until('apply failure logged', () => /config reload failed while applying/.test(sc.stderr()), 8000, sc);
      assert.equal(await version(listenerPort), 'v1');
      assert.equal((await get(adminA, '/ready')).body, 'ready\n', 'the admin server took its port back');

      // The admin server moves to a free port, and the listener takes over the admin's old one.
      writeAtomically(sc.configPath, at(adminB, adminA, 'v3'));
      sc.proc.kill('SIGHUP');
      await until('listener on the old admin port', async () => (await version(adminA)) === 'v3', 8000, sc);
      assert.equal((await get(adminB, '/ready')).status, 200);
      await until('old listener port closed', () => get(listenerPort, '/version').then(() => false, () => true));
    } finally {
      await sc.stop();
      await up.close();
      blocker.close();
    }
  });

  it('no reload ends the process: an empty file while the default admin port is busy, or a forced config with nothing to serve', async () => {
    // An empty file means the default admin port 15000; make sure it is taken (by us, or already by someone else).
    const busy = net.createServer();
    await new Promise<void>((r) => busy.once('error', () => r()).listen(15000, '127.0.0.1', r));
    const up = await startUpstream((_req, res) => res.end('ok'));
    const admin = await freePort();
    const sc = await startSidecar(config(admin, up.address, 'v1', 'watch: false\n'));
    const port = sc.ports.in!;
    try {
      writeFileSync(sc.configPath, '');
      sc.proc.kill('SIGHUP');
      await until('empty file refused', () => /config reload refused/.test(sc.stderr()) || exited(sc), 8000, sc);
      await sleep(500);
      assert.ok(!exited(sc), `the process exited (${sc.proc.exitCode ?? sc.proc.signalCode}):\n${sc.stderr()}`);
      assert.equal(await version(port), 'v1');

      // Asked for on purpose: no listeners, no admin, no watcher. The process still runs until SIGTERM.
      writeFileSync(sc.configPath, 'watch: false\nallow_no_listeners: true\nadmin: { enabled: false }\nlisteners: []\n');
      sc.proc.kill('SIGHUP');
      await until('forced config applied', () => /config reloaded/.test(sc.stderr()) || exited(sc), 8000, sc);
      await sleep(1000);
      assert.ok(!exited(sc), `the process exited (${sc.proc.exitCode ?? sc.proc.signalCode}):\n${sc.stderr()}`);
      assert.match(await version(port), /ECONNREFUSED/, 'the listener is gone, as asked');
      assert.equal(await sc.stop(), 0);
    } finally {
      await sc.stop();
      await up.close();
      busy.close();
    }
  });

  it('/ready answers 503 while no configured listener serves, and 200 again once one is bound', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const admin = await freePort();
    const sc = await startSidecar(config(admin, up.address, 'v1'));
    try {
      assert.equal((await get(admin, '/ready')).status, 200);
      writeAtomically(sc.configPath, `admin: { port: ${admin} }\nallow_no_listeners: true\nlisteners: []\n`);
      sc.proc.kill('SIGHUP');
      await until('no listeners in force', async () => (await get(admin, '/ready')).status === 503);
      assert.equal((await get(admin, '/ready')).body, 'not ready: no listeners configured\n');
      assert.match(await version(sc.ports.in!), /ECONNREFUSED/);

      const port = await freePort();
      writeAtomically(sc.configPath, config(admin, up.address, 'v2').replace('port: 0', `port: ${port}`));
      sc.proc.kill('SIGHUP');
      await until('listener back', async () => (await version(port)) === 'v2');
      assert.equal((await get(admin, '/ready')).status, 200);
    } finally {
      await sc.stop();
      await up.close();
    }
  });

  it('under steady load: in-place writes, renames, 20 SIGHUPs and an invalid file fail no request; the last config is in force', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const admin = await freePort();
    const sc = await startSidecar(config(admin, up.address, 'v0'));
    const port = sc.ports.in!;
    const file = sc.configPath;
    const load = startLoad(port, 60); // six clients: about 300 requests a second
    const at = (body: string): Promise<void> => until(`${body} in force`, async () => (await version(port)) === body);
    try {
      await sleep(300);
      // In-place writes: at once, after a pause (the empty file sits there 300 ms), and in two chunks.
      await writeInPlace(file, [config(admin, up.address, 'p1')], 0);
      await at('p1');
      await writeInPlace(file, [config(admin, up.address, 'p2')], 300);
      await at('p2');
      const p3 = config(admin, up.address, 'p3');
      await writeInPlace(file, [p3.slice(0, p3.indexOf('listeners:')), p3.slice(p3.indexOf('listeners:'))], 300);
      await at('p3');
      const p4 = config(admin, up.address, 'p4');
      await writeInPlace(file, [p4.slice(0, p4.indexOf('clusters:')), p4.slice(p4.indexOf('clusters:'))], 100);
      await at('p4');
      // Renames.
      for (const body of ['r1', 'r2']) {
        writeAtomically(file, config(admin, up.address, body));
        await at(body);
      }
      // 20 SIGHUPs: in bursts, some with an in-place write racing them.
      for (let i = 1; i <= 20; i++) {
        if (i % 5 === 0) void writeInPlace(file, [config(admin, up.address, `h${i}`)], 50);
        sc.proc.kill('SIGHUP');
        await sleep(60);
      }
      await at('h20');
      // An invalid file: rejected, the running config stays.
      writeAtomically(file, config(admin, up.address, 'bad').replace('port: 0', 'port: nope'));
      sc.proc.kill('SIGHUP');
      await until('invalid file rejected', () => /config reload rejected/.test(sc.stderr()));
      assert.equal(await version(port), 'h20');
      writeAtomically(file, config(admin, up.address, 'final'));
      await at('final');
      await sleep(300);
      const { done, failed } = await load.stop();
      assert.deepEqual(failed, [], `${failed.length} of ${done} requests failed`);
      assert.ok(done > 1000, `only ${done} requests ran`);
      assert.equal(await version(port), 'final');
      assert.equal((await get(admin, '/ready')).status, 200);
      assert.ok(await metric(sc, /sidecar_config_last_reload_successful 1/));
      // A half-written file may be caught and refused (empty_file, no_listeners: the guard at work, the old config
      // serving on); what must never happen is a config applied and then failing, or half-applied.
      assert.doesNotMatch(sc.stderr(), /failed while applying|"cause":"apply"/);
    } finally {
      await load.stop();
      await sc.stop();
      await up.close();
    }
  });
});
