// `npm run mesh:up` then `npm run mesh:down` (dist/scripts/mesh.js, what the npm scripts run): up prints the URLs and
// leaves the mesh serving after the command exited; down removes every namespace, link, process and the state dir.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { leftovers, meshDown, readState } from '../../scripts/netns-mesh.js';
import { requireCommand } from '../helpers/system.js';

const MESH = fileURLToPath(new URL('../../scripts/mesh.js', import.meta.url));

function mesh(cmd: 'up' | 'down', env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [MESH, cmd], { encoding: 'utf8', timeout: 90_000, env: { ...process.env, ...env } }, (err, out, stderr) =>
      err ? reject(new Error(`mesh ${cmd}: ${err.message}\n${out}\n${stderr}`)) : resolve(out),
    );
  });
}

test('mesh:up leaves a serving mesh and prints how to use it; mesh:down leaves nothing behind', { timeout: 120_000 }, async (t) => {
  requireCommand('ip', 'iproute2');
  requireCommand('etcd', 'etcd-server');
  const id = `u${process.pid % 100000}`;
  const dir = join(tmpdir(), `sidecar-mesh-${id}`);
  const env = { SIDECAR_MESH_DIR: dir, SIDECAR_MESH_ID: id, SIDECAR_MESH_SUBNET: String(100 + ((process.pid + 75) % 150)) };
  try {
    const up = await mesh('up', env);
    const s = readState(dir)!;
    assert.ok(s !== undefined, 'the state file is written');
    for (const h of s.hosts) assert.ok(up.includes(`${h.admin}/dashboard`), `prints host ${h.i}'s dashboard URL`);
    assert.ok(up.includes(`ip netns exec ${s.hosts[0]!.ns} curl -s http://127.0.0.1:15001/`), 'prints how to curl through host 1');
    assert.ok(up.includes(`ip -n ${s.hosts[3]!.ns} link set ${s.hosts[3]!.veth} down`), 'prints how to cut a host');
    // The command has exited; the mesh still serves (processes are detached) and the printed curl works.
    const answer = await new Promise<string>((resolve, reject) =>
      execFile('ip', ['netns', 'exec', s.hosts[0]!.ns, 'curl', '-s', '--noproxy', '*', 'http://127.0.0.1:15001/'], { encoding: 'utf8', timeout: 10_000 }, (err, out) => (err ? reject(err) : resolve(out))),
    );
    assert.match(answer, /^app-[234]$/);
    const pids = s.processes.map((p) => p.pid);
    assert.equal(leftovers(id).length, 2 * s.hosts.length + 1, `namespaces, bridge ports and the bridge exist: ${leftovers(id).join(', ')}`);
    const down = await mesh('down', env);
    t.diagnostic(`mesh:down ${down.trim().split('\n').length - 1} items removed`);
    assert.match(down, /namespace scm1-/);
    assert.deepEqual(leftovers(id), [], 'no namespace or link of the mesh is left (ip netns list, ip link)');
    for (const pid of pids) assert.ok(!existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '), `process ${pid} is gone`);
    assert.equal(existsSync(dir), false, 'the state directory is removed');
    assert.match(await mesh('down', env), /no mesh recorded/, 'a second down is harmless');
  } finally {
    await meshDown(dir);
  }
});
