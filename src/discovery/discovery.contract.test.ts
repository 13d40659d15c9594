// Contract suite every discovery source passes: initial set, add, remove, weight change, source unavailable (last
// good set kept), source back. A later source (DNS, etcd) adds one driver here.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { startEtcd, type TestEtcd } from '../../test/helpers/etcd.js';
import { EndpointSet } from '../cluster/endpoint-set.js';
import { EtcdSource } from './etcd.js';
import { DnsSource } from './dns.js';
import { startDnsServer, type TestDnsServer } from '../../test/helpers/dns-server.js';
import { FileSource } from './file.js';
import type { DiscoveredEndpoint, DiscoverySource } from './source.js';
import { StaticSource } from './static.js';
import { RecordingSink } from './testing.js';

/** Publishes endpoint lists through a source's own medium. */
interface Driver {
  readonly source: DiscoverySource;
  publish(list: readonly DiscoveredEndpoint[]): void | Promise<void>;
  /** Makes the source unreadable; absent for a source that cannot fail (static). */
  break?(): void | Promise<void>;
  dispose(): void;
}

interface DriverFactory {
  readonly kind: string;
  /** The source reads its medium asynchronously (a network store): its initial set comes after start, not during it. */
  readonly async?: boolean;
  make(initial: readonly DiscoveredEndpoint[]): Driver | Promise<Driver>;
}

/** One real etcd for the suite, started on first use. */
let etcd: TestEtcd | undefined;
let etcdDown = false;
let etcdClient: Etcd3 | undefined;
after(async () => {
  etcdClient?.close();
  await etcd?.dispose();
});
let serviceN = 0;

/** One test DNS server for the suite; each driver has its own SRV name. */
let dnsServer: TestDnsServer | undefined;
after(async () => dnsServer?.close());

/** An endpoint list as SRV records (the weight is the SRV weight) plus an A record per target, TTL 0. */
function publishDns(server: TestDnsServer, name: string, list: readonly DiscoveredEndpoint[]): void {
  server.zone.set(name, {
    SRV: list.map((e) => {
      const [ip = '', port = '0'] = e.address.split(':');
      const target = `h-${ip.replace(/\./g, '-')}.${name}`;
      server.zone.set(target, { A: [{ address: ip, ttl: 0 }] });
      return { priority: 10, weight: e.weight, port: Number(port), target, ttl: 0 };
    }),
  });
}

/** Publishes a list as one etcd transaction: keys no longer listed are deleted, the others put (one watch event batch). */
async function publishEtcd(client: Etcd3, keyPrefix: string, list: readonly DiscoveredEndpoint[]): Promise<void> {
  const have = await client.getAll().prefix(keyPrefix).keys();
  const want = new Map(list.map((e) => [`${keyPrefix}${e.address}`, JSON.stringify({ weight: e.weight })]));
  const ops = [
    ...have.filter((k) => !want.has(k)).map((k) => client.delete().key(k)),
    ...[...want].map(([k, v]) => client.put(k).value(v)),
  ];
  await client.if(keyPrefix, 'Version', '>', -1).then(...ops).else(...ops).commit();
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sidecar-discovery-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let fileN = 0;

/** Atomic publish, as a config-management tool does it: write a temp file, rename it over the watched one. */
function publishFile(file: string, text: string): void {
  const temp = `${file}.tmp-${process.pid}-${fileN++}`;
  fs.writeFileSync(temp, text);
  fs.renameSync(temp, file);
}

const FACTORIES: readonly DriverFactory[] = [
  {
    kind: 'static',
    make(initial) {
      const source = new StaticSource(initial);
      return { source, publish: (list) => source.set(list), dispose: () => source.stop() };
    },
  },
  {
    kind: 'file',
    make(initial) {
      const file = path.join(tmp, `endpoints-${fileN++}.yaml`);
      const yaml = (list: readonly DiscoveredEndpoint[]): string =>
        `# published by the test\nendpoints:\n${list.map((e) => `  - { address: "${e.address}", weight: ${e.weight} }\n`).join('')}`;
      publishFile(file, yaml(initial));
      const source = new FileSource(file);
      return {
        source,
        publish: (list) => publishFile(file, yaml(list)),
        break: () => publishFile(file, 'endpoints: [ "not an address" '),
        dispose: () => source.stop(),
      };
    },
  },
  {
    kind: 'dns',
    async: true,
    async make(initial) {
      dnsServer ??= await startDnsServer();
      const server = dnsServer;
      const name = `svc${serviceN++}.test`;
      publishDns(server, name, initial);
      const source = new DnsSource({ name, type: 'SRV', servers: [server.address], ttlFloorMs: 50, ttlCeilingMs: 1000, timeoutMs: 200 });
      return {
        source,
        publish(list) {
          server.mode = 'ok';
          publishDns(server, name, list);
        },
        break() {
          server.mode = 'servfail';
        },
        dispose: () => source.stop(),
      };
    },
  },
  {
    kind: 'etcd',
    async: true,
    async make(initial) {
      etcd ??= await startEtcd();
      etcdClient ??= new Etcd3({ hosts: etcd.url });
      const server = etcd;
      const service = `svc${serviceN++}`;
      const keyPrefix = `/sidecar/services/${service}/`;
      await publishEtcd(etcdClient, keyPrefix, initial);
      const source = new EtcdSource({ endpoints: [server.url], prefix: '/sidecar/services/', service, timeoutMs: 500 });
      return {
        source,
        async publish(list) {
          if (etcdDown) {
            await server.start();
            etcdDown = false;
            etcdClient?.close();
            etcdClient = new Etcd3({ hosts: server.url });
          }
          await publishEtcd(etcdClient!, keyPrefix, list);
        },
        async break() {
          await server.stop();
          etcdDown = true;
        },
        dispose: () => source.stop(),
      };
    },
  },
];

const A = { address: '10.0.0.1:80', weight: 1 };
const B = { address: '10.0.0.2:80', weight: 1 };
const C = { address: '10.0.0.3:80', weight: 1 };
const label = (list: readonly DiscoveredEndpoint[]): string[] => list.map((e) => `${e.address}*${e.weight}`).sort();

for (const factory of FACTORIES) {
  describe(`discovery contract: ${factory.kind}`, () => {
    async function started(initial: readonly DiscoveredEndpoint[]): Promise<{ d: Driver; sink: RecordingSink }> {
      const d = await factory.make(initial);
      const sink = new RecordingSink();
      d.source.start(sink);
      if (factory.async === true) await sink.waitFor(() => sink.updates.length > 0 || sink.errors.length > 0, 'the initial read');
      return { d, sink };
    }

    it('delivers the initial set on start (synchronously unless the source is a network store)', async () => {
      const { d, sink } = await started([A, B]);
      try {
        assert.deepEqual(sink.latest, label([A, B]));
        assert.deepEqual(sink.errors, []);
        assert.ok(d.source.name.startsWith(factory.kind), `source name ${d.source.name}`);
      } finally {
        d.dispose();
      }
    });

    it('delivers an added endpoint, a removed one and a weight change', async () => {
      const { d, sink } = await started([A, B]);
      try {
        await d.publish([A, B, C]);
        await sink.waitFor(() => sink.latest?.length === 3, 'the added endpoint');
        assert.deepEqual(sink.latest, label([A, B, C]));
        await d.publish([A, C]);
        await sink.waitFor(() => sink.latest?.length === 2, 'the removal');
        assert.deepEqual(sink.latest, label([A, C]));
        await d.publish([A, { ...C, weight: 5 }]);
        await sink.waitFor(() => sink.latest?.includes('10.0.0.3:80*5') === true, 'the weight change');
        assert.deepEqual(sink.latest, label([A, { ...C, weight: 5 }]));
        assert.deepEqual(sink.errors, []);
      } finally {
        d.dispose();
      }
    });

    it('keeps the last good set while the source is unavailable, and follows it again once it is back', async () => {
      const { d, sink } = await started([A, B]);
      // What a cluster does with the updates: the EndpointSet fed by this sink keeps its members through the outage.
      const set = new EndpointSet<{ address: string; weight: number; active: number; available: boolean }>('round_robin', {}, {
        add: (e) => ({ address: e.address, weight: e.weight, active: 0, available: true }),
        remove: () => {},
      });
      for (const u of sink.updates) set.replace(u);
      try {
        if (d.break === undefined) {
          // A static list cannot go away: no operation ever reports it unavailable.
          await d.publish([A]);
          await d.publish([A, B]);
          assert.deepEqual(sink.errors, []);
          assert.deepEqual(sink.latest, label([A, B]));
          return;
        }
        const updatesBefore = sink.updates.length;
        await d.break();
        await sink.waitFor(() => sink.errors.length > 0, 'the source to report itself unavailable');
        assert.equal(sink.updates.length, updatesBefore, 'an unavailable source delivers no (empty or partial) set');
        for (const u of sink.updates.slice(updatesBefore)) set.replace(u);
        assert.deepEqual(set.list.map((e) => e.address).sort(), [A.address, B.address], 'the last good set is kept');
        await d.publish([B, C]);
        await sink.waitFor(() => sink.latest?.join() === label([B, C]).join(), 'the source to be followed again', 10_000);
        for (const u of sink.updates.slice(updatesBefore)) set.replace(u);
        assert.deepEqual(set.list.map((e) => e.address).sort(), [B.address, C.address]);
      } finally {
        d.dispose();
      }
    });

    it('delivers nothing after stop', async () => {
      const { d, sink } = await started([A]);
      d.dispose();
      const n = sink.updates.length;
      await d.publish([A, B]);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(sink.updates.length, n);
    });
  });
}

describe('file source specifics', () => {
  it('an empty list or a missing file is not applied; a bare list and "host:port" entries are read', async () => {
    const file = path.join(tmp, 'specific.json');
    publishFile(file, JSON.stringify(['10.0.0.9:80', { address: '10.0.0.8:80', weight: 3 }]));
    const source = new FileSource(file);
    const sink = new RecordingSink();
    source.start(sink);
    try {
      assert.deepEqual(sink.latest, ['10.0.0.8:80*3', '10.0.0.9:80*1']);
      publishFile(file, '{"endpoints": []}');
      await sink.waitFor(() => sink.errors.length === 1, 'the empty set to be refused');
      assert.match(sink.errors[0]!, /no endpoints/);
      fs.unlinkSync(file);
      await sink.waitFor(() => sink.errors.length === 2, 'the missing file to be reported');
      assert.match(sink.errors[1]!, /cannot read: ENOENT/);
      assert.equal(sink.updates.length, 1, 'the last good set stands');
      publishFile(file, 'endpoints: ["10.0.0.7:80"]');
      await sink.waitFor(() => sink.latest?.join() === '10.0.0.7:80*1', 'the file to come back');
    } finally {
      source.stop();
    }
  });

  it('names the bad entry of an invalid file', async () => {
    const file = path.join(tmp, 'invalid.yaml');
    publishFile(file, 'endpoints:\n  - "10.0.0.1:80"\n  - { address: "10.0.0.2:80", weight: 0 }\n');
    const source = new FileSource(file);
    const sink = new RecordingSink();
    source.start(sink);
    source.stop();
    assert.equal(sink.updates.length, 0);
    assert.match(sink.errors[0]!, /invalid\.yaml: endpoints\.1/);
  });
});
