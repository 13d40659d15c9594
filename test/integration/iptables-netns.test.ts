// `sidecar iptables --apply` inside a real network namespace: an unmodified curl (no proxy settings) goes through
// the sidecar both ways, and the sidecar's own upstream connections (its uid is excluded) do not loop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireCommand } from '../helpers/system.js';

const BIN = fileURLToPath(new URL('../../../bin/sidecar.js', import.meta.url));
const sh = (args: string[]): string => execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 20_000 });
const tryRun = (args: string[]): void => {
  try {
    execFileSync(args[0]!, args.slice(1), { stdio: 'ignore', timeout: 20_000 });
  } catch {
    /* cleanup: may not exist */
  }
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const APP = `require('http').createServer((q, s) => { s.setHeader('content-type', 'application/json'); s.end(JSON.stringify({ who: process.argv[1], url: q.url, headers: q.headers })); }).listen(Number(process.argv[2]), process.argv[3]);`;

test('iptables rules in a netns: curl without proxy settings goes through the sidecar, the sidecar does not loop', { timeout: 90_000 }, async () => {
  requireCommand('ip', 'iproute2');
  requireCommand('iptables', 'iptables');
  requireCommand('curl', 'curl');
  const id = `${process.pid % 10000}`;
  const nsA = `sct-a-${id}`;
  const nsB = `sct-b-${id}`;
  const dir = mkdtempSync(join(tmpdir(), 'sidecar-ipt-'));
  chmodSync(dir, 0o777);
  const children: ChildProcess[] = [];
  const start = (ns: string, cmd: string[]): ChildProcess => {
    const c = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout?.resume();
    c.stderr?.resume();
    children.push(c);
    return c;
  };
  try {
    sh(['ip', 'netns', 'add', nsA]);
    sh(['ip', 'netns', 'add', nsB]);
    sh(['ip', 'link', 'add', `va${id}`, 'type', 'veth', 'peer', 'name', `vb${id}`]);
    sh(['ip', 'link', 'set', `va${id}`, 'netns', nsA]);
    sh(['ip', 'link', 'set', `vb${id}`, 'netns', nsB]);
    for (const [ns, dev, addr] of [[nsA, `va${id}`, '198.18.0.1/24'], [nsB, `vb${id}`, '198.18.0.2/24']] as const) {
      sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      sh(['ip', '-n', ns, 'addr', 'add', addr, 'dev', dev]);
      sh(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    }
    const log = join(dir, 'access.log');
    const cfg = join(dir, 'sidecar.yaml');
    writeFileSync(cfg, `admin: { address: 0.0.0.0, port: 15000 }
access_log: { path: ${log} }
listeners:
  - name: inbound
    address: 0.0.0.0
    port: 15006
    mode: reverse
    routes:
      - { name: app, match: { prefix: / }, cluster: app }
  - name: outbound
    address: 0.0.0.0
    port: 15001
    mode: forward
    hop_marker: ignore
    forward: { allow_passthrough: true, allowed_hosts: ["*"] }
clusters:
  - { name: app, endpoints: ["127.0.0.1:8080"] }
`);
    chmodSync(cfg, 0o644);
    // Host A: its app on loopback, its sidecar as uid 65534; host B: a plain server on :80.
    start(nsA, ['node', '-e', APP, 'app-a', '8080', '127.0.0.1']);
    start(nsB, ['node', '-e', APP, 'server-b', '80', '0.0.0.0']);
    start(nsA, ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', 'node', BIN, 'run', '-c', cfg]);
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        if (sh(['ip', 'netns', 'exec', nsA, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:15000/ready']) === '200') break;
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline) throw new Error('the sidecar did not become ready');
      await sleep(200);
    }
    const printed = sh(['node', BIN, 'iptables', '--proxy-uid', '65534', '--exclude-inbound-ports', '22']);
    assert.match(printed, /--uid-owner 65534 -j RETURN/);
    sh(['ip', 'netns', 'exec', nsA, 'node', BIN, 'iptables', '--apply', '--proxy-uid', '65534']);
    assert.match(sh(['ip', 'netns', 'exec', nsA, 'iptables', '-t', 'nat', '-S']), /SIDECAR_REDIRECT/);

    // Outbound: curl in A (as root, no proxy settings) to B's address.
    const out = JSON.parse(sh(['ip', 'netns', 'exec', nsA, 'env', '-u', 'http_proxy', '-u', 'HTTP_PROXY', 'curl', '-s', '--noproxy', '*', 'http://198.18.0.2/outbound-probe'])) as { who: string; url: string };
    assert.equal(out.who, 'server-b');
    assert.equal(out.url, '/outbound-probe');
    // Inbound: curl in B to A's port 9999 lands on A's inbound listener, then A's app.
    const inb = JSON.parse(sh(['ip', 'netns', 'exec', nsB, 'curl', '-s', '--noproxy', '*', 'http://198.18.0.1:9999/inbound-probe'])) as { who: string; url: string };
    assert.equal(inb.who, 'app-a');
    assert.equal(inb.url, '/inbound-probe');
    await sleep(500);
    const lines = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [];
    const outLines = lines.filter((l) => l.includes('/outbound-probe'));
    const inLines = lines.filter((l) => l.includes('/inbound-probe'));
    // Exactly one access-log line each: had the sidecar's own upstream connection been redirected back to it,
    // the request would show up twice (or loop until refused).
    assert.equal(outLines.length, 1, lines.join('\n'));
    assert.equal(inLines.length, 1, lines.join('\n'));
    assert.match(outLines[0]!, /outbound/);
    assert.match(inLines[0]!, /inbound/);
    // The admin port is not redirected: B reaches A's /ready directly.
    assert.equal(sh(['ip', 'netns', 'exec', nsB, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://198.18.0.1:15000/ready']), '200');
    // Cleanup rules work too.
    sh(['ip', 'netns', 'exec', nsA, 'node', BIN, 'iptables', '--cleanup', '--apply']);
    assert.doesNotMatch(sh(['ip', 'netns', 'exec', nsA, 'iptables', '-t', 'nat', '-S']), /SIDECAR_/);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await sleep(200);
    tryRun(['ip', 'netns', 'del', nsA]);
    tryRun(['ip', 'netns', 'del', nsB]);
  }
  assert.ok(!sh(['ip', 'netns', 'list']).includes(nsA), 'the namespace is removed');
});
