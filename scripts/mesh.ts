// `npm run mesh:up` / `npm run mesh:down`: the netns mesh of test/integration/mesh-netns.test.ts (scripts/netns-mesh.ts),
// left running for a person to explore, and removed again. Root only (network namespaces).
// Environment: SIDECAR_MESH_DIR (state directory, default <tmp>/sidecar-mesh), SIDECAR_MESH_ID (default "up"),
// SIDECAR_MESH_SUBNET (third octet of 198.18.X.0/24, default 1).
import os from 'node:os';
import path from 'node:path';
import { meshDown, meshUp, readState, type MeshState } from './netns-mesh.js';

const dir = process.env.SIDECAR_MESH_DIR ?? path.join(os.tmpdir(), 'sidecar-mesh');
const id = process.env.SIDECAR_MESH_ID ?? 'up';
const subnet = Number(process.env.SIDECAR_MESH_SUBNET ?? '1');

function describe(s: MeshState): string {
  const h1 = s.hosts[0]!;
  const cut = s.hosts.at(-1)!;
  const lines = [
    `mesh "${s.id}" is up: ${s.hosts.length} hosts on bridge ${s.bridge} (198.18.${s.subnet}.0/24), state in ${s.dir}`,
    '',
    'sidecars (admin: /clusters /metrics /config; live page: /dashboard):',
    ...s.hosts.map((h) => `  host ${h.i}  ns ${h.ns.padEnd(10)} ${h.addr.padEnd(13)} admin ${h.admin}/   dashboard ${h.admin}/dashboard   registers ${h.service} as ${h.registered}`),
    `etcd:          ${s.etcdUrl}    etcdctl --endpoints ${s.etcdUrl} get --prefix /sidecar/services/`,
    `fault relay:   ${s.relay.listen} -> ${s.relay.target} (what host ${s.relay.host} registers); change it live:`,
    `               curl '${s.relay.control}/?latency=200&loss=0'      (ms per chunk each way; loss 0..1 resets connections; down=1)`,
    '',
    'call "backend" through host 1 (an app calling its own sidecar; mTLS + HTTP/2 between the sidecars):',
    `  ip netns exec ${h1.ns} curl -s http://127.0.0.1:15001/        # answers app-2, app-3 or app-4`,
    `  for i in $(seq 20); do ip netns exec ${h1.ns} curl -s http://127.0.0.1:15001/; echo; done | sort | uniq -c`,
    'cut a host off (its lease expires: host 1 drops it from /clusters within the TTL), and bring it back:',
    `  ip -n ${cut.ns} link set ${cut.veth} down;  curl -s ${h1.admin}/clusters`,
    `  ip -n ${cut.ns} link set ${cut.veth} up`,
    `logs: ${path.join(s.dir, 'logs')}/   remove everything: npm run mesh:down`,
  ];
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<number> {
  const cmd = process.argv[2];
  if (cmd === 'up') {
    const existing = readState(dir);
    if (existing !== undefined) {
      process.stdout.write(`a mesh is already up (run npm run mesh:down to remove it)\n\n${describe(existing)}`);
      return 0;
    }
    process.stdout.write(`starting mesh "${id}" in ${dir} ...\n`);
    const s = await meshUp({ id, subnet, dir });
    process.stdout.write(describe(s));
    return 0;
  }
  if (cmd === 'down') {
    const removed = await meshDown(dir);
    process.stdout.write(removed.length === 0 ? `no mesh recorded in ${dir}\n` : `removed:\n${removed.map((r) => `  ${r}`).join('\n')}\n`);
    return 0;
  }
  process.stderr.write('usage: node dist/scripts/mesh.js up|down   (npm run mesh:up / mesh:down; root needed)\n');
  return 2;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`mesh: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
