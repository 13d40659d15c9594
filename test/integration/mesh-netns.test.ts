// A mesh of four hosts as network namespaces on a bridge (198.18.1.0/24): each runs an app and its sidecar; host 1's
// app calls "backend" through its sidecar, which speaks h2c (peer: sidecar) to the sidecars of hosts 2-4 (static
// endpoints; the etcd source plugs in as clusters[].discovery). Host 4's link is cut; outlier detection moves
// traffic to the others, and the client-visible error rate is reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireCommand } from '../helpers/system.js';

const BIN = fileURLToPath(new URL('../../../bin/sidecar.js', import.meta.url));
const sh = (args: string[]): string => execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 60_000 });
const tryRun = (args: string[]): void => {
  try {
    execFileSync(args[0]!, args.slice(1), { stdio: 'ignore', timeout: 20_000 });
  } catch {
    /* cleanup */
  }
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const APP = `require('http').createServer((q, s) => s.end(process.argv[1])).listen(8080, '127.0.0.1');`;
// Sends n requests one after the other to the local sidecar; prints {ok, errors, by} as JSON.
const CLIENT = `(async () => { const n = Number(process.argv[1]); const by = {}; let ok = 0, errors = 0;
  for (let i = 0; i < n; i++) { try { const r = await fetch('http://127.0.0.1:15001/', { signal: AbortSignal.timeout(3000) }); const t = await r.text();
    if (r.status === 200) { ok++; by[t] = (by[t] || 0) + 1; } else errors++; } catch { errors++; } }
  console.log(JSON.stringify({ ok, errors, by })); })();`;

test('four hosts in netns: cutting one host moves traffic to the others', { timeout: 120_000 }, async () => {
  requireCommand('ip', 'iproute2');
  const id = `${process.pid % 10000}`;
  const br = `scbr${id}`;
  const hosts = [1, 2, 3, 4].map((i) => ({ i, ns: `scm${i}-${id}`, addr: `198.18.1.${i}`, veth: `scv${i}-${id}`, peer: `scp${i}-${id}` }));
  const dir = mkdtempSync(join(tmpdir(), 'sidecar-mesh-'));
  chmodSync(dir, 0o755);
  const children: ChildProcess[] = [];
  const start = (ns: string, cmd: string[]): ChildProcess => {
    const c = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', 'ignore', 'ignore'] });
    children.push(c);
    return c;
  };
  try {
    sh(['ip', 'link', 'add', br, 'type', 'bridge']);
    sh(['ip', 'link', 'set', br, 'up']);
    for (const h of hosts) {
      sh(['ip', 'netns', 'add', h.ns]);
      sh(['ip', 'link', 'add', h.veth, 'type', 'veth', 'peer', 'name', h.peer]);
      sh(['ip', 'link', 'set', h.peer, 'master', br]);
      sh(['ip', 'link', 'set', h.peer, 'up']);
      sh(['ip', 'link', 'set', h.veth, 'netns', h.ns]);
      sh(['ip', '-n', h.ns, 'link', 'set', 'lo', 'up']);
      sh(['ip', '-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', h.veth]);
      sh(['ip', '-n', h.ns, 'link', 'set', h.veth, 'up']);
      const cfg = join(dir, `host${h.i}.yaml`);
      writeFileSync(cfg, `admin: { address: 127.0.0.1, port: 15000 }
listeners:
  - name: inbound
    address: ${h.addr}
    port: 15006
    routes: [{ name: app, match: { prefix: / }, cluster: app }]
  - name: outbound
    address: 127.0.0.1
    port: 15001
    hop_marker: ignore
    routes: [{ name: backend, match: { prefix: / }, cluster: backend, retry: { max_retries: 2 } }]
clusters:
  - { name: app, endpoints: ["127.0.0.1:8080"] }
  - name: backend
    peer: sidecar
    connect_timeout: 300ms
    endpoints: [${hosts.slice(1).map((o) => `"${o.addr}:15006"`).join(', ')}]
    outlier_detection: { consecutive_gateway_failure: 2, base_ejection_time: 30s, max_ejection_percent: 50 }
`);
      start(h.ns, ['node', '-e', APP, `app-${h.i}`]);
      start(h.ns, ['node', BIN, 'run', '-c', cfg]);
    }
    for (const h of hosts) {
      const deadline = Date.now() + 30_000;
      while (spawnOk(['ip', 'netns', 'exec', h.ns, 'curl', '-sf', 'http://127.0.0.1:15000/ready']) === false) {
        if (Date.now() > deadline) throw new Error(`host ${h.i}: sidecar not ready`);
        await sleep(200);
      }
    }
    const client = (n: number): { ok: number; errors: number; by: Record<string, number> } => JSON.parse(sh(['ip', 'netns', 'exec', hosts[0]!.ns, 'node', '-e', CLIENT, String(n)])) as never;
    const before = client(30);
    assert.equal(before.errors, 0);
    for (const k of ['app-2', 'app-3', 'app-4']) assert.ok((before.by[k] ?? 0) > 0, `before: ${JSON.stringify(before)}`);
    sh(['ip', '-n', hosts[3]!.ns, 'link', 'set', hosts[3]!.veth, 'down']);
    const during = client(60);
    const rate = during.errors / 60;
    process.stdout.write(`# mesh: host 4 cut; client-visible error rate ${(rate * 100).toFixed(1)}% (${during.errors}/60), served by ${JSON.stringify(during.by)}\n`);
    assert.ok(rate <= 0.1, `error rate ${rate}`);
    const after = client(20);
    assert.equal(after.by['app-4'] ?? 0, 0, 'the cut host gets no traffic');
    assert.ok(after.ok >= 19, JSON.stringify(after));
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await sleep(200);
    for (const h of hosts) tryRun(['ip', 'netns', 'del', h.ns]);
    tryRun(['ip', 'link', 'del', br]);
  }
});

function spawnOk(args: string[]): boolean {
  try {
    execFileSync(args[0]!, args.slice(1), { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}
