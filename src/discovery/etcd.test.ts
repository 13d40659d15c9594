// etcd source specifics against a real etcd: entries that are not endpoints are skipped and reported; changes made
// while the source was cut off, even past a compaction of the store's history, are seen after it is back (a full
// re-read, then a watch from that read's revision).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { startEtcd, type TestEtcd } from '../../test/helpers/etcd.js';
import { EtcdSource, parseEtcdEndpoint } from './etcd.js';
import { RecordingSink } from './testing.js';

describe('etcd source: entries', () => {
  it('reads the address from the key and weight/zone from an optional JSON value', () => {
    const p = '/s/app/';
    assert.deepEqual(parseEtcdEndpoint(p, '/s/app/10.0.0.1:80', ''), { address: '10.0.0.1:80', weight: 1 });
    assert.deepEqual(parseEtcdEndpoint(p, '/s/app/[::1]:80', '{"weight":4,"zone":"a"}'), { address: '[::1]:80', weight: 4, zone: 'a' });
    assert.throws(() => parseEtcdEndpoint(p, '/s/app/nope', ''), /host:port/);
    assert.throws(() => parseEtcdEndpoint(p, '/s/app/10.0.0.1:80', '{"weight":0}'), /weight must be an integer 1\.\.1000/);
    assert.throws(() => parseEtcdEndpoint(p, '/s/app/10.0.0.1:80', 'weight=2'), /not JSON/);
  });
});

describe('etcd source against a real etcd', () => {
  let etcd: TestEtcd;
  let client: Etcd3;
  before(async () => {
    etcd = await startEtcd();
    client = new Etcd3({ hosts: etcd.url });
  });
  after(async () => {
    client.close();
    await etcd.dispose();
  });

  it('skips and reports a bad entry, and sees changes made around an outage and a compaction', async () => {
    await client.put('/sidecar/services/web/10.0.0.1:80').value('');
    await client.put('/sidecar/services/web/10.0.0.2:80').value('{"weight":2}');
    await client.put('/sidecar/services/web/garbage').value('');
    await client.put('/sidecar/services/webby/10.9.9.9:80').value(''); // another service sharing the name's start
    const source = new EtcdSource({ endpoints: [etcd.url], prefix: '/sidecar/services', service: 'web', timeoutMs: 300 });
    const sink = new RecordingSink();
    source.start(sink);
    try {
      await sink.waitFor(() => sink.updates.length === 1, 'the first read');
      assert.deepEqual(sink.latest, ['10.0.0.1:80*1', '10.0.0.2:80*2']);
      assert.match(sink.errors[0]!, /\/sidecar\/services\/web\/garbage: the key's last part must be host:port \(entry skipped\)/);
      const errorsBefore = sink.errors.length;
      await etcd.stop();
      await sink.waitFor(() => sink.errors.length > errorsBefore, 'the disconnect to be reported');
      await etcd.start();
      // Changes the source has not seen yet, then the history compacted past them: a resumed watch could not replay
      // them; the re-read does.
      client.close();
      client = new Etcd3({ hosts: etcd.url });
      await client.delete().key('/sidecar/services/web/10.0.0.1:80');
      await client.delete().key('/sidecar/services/web/garbage');
      const put = await client.put('/sidecar/services/web/10.0.0.3:80').value('{"weight":3,"zone":"b"}').exec();
      await client.kv.compact({ revision: put.header.revision, physical: true });
      await sink.waitFor(() => sink.latest?.join() === '10.0.0.2:80*2,10.0.0.3:80*3', 'the set after the outage', 10_000);
      assert.equal(sink.updates.at(-1)!.find((e) => e.address === '10.0.0.3:80')!.zone, 'b');
      assert.ok(BigInt(source.revision) >= BigInt(put.header.revision));
      // And the watch runs again: a later change arrives without another outage.
      await client.put('/sidecar/services/web/10.0.0.4:80').value('');
      await sink.waitFor(() => sink.latest?.length === 3, 'a change after the resync');
    } finally {
      source.stop();
    }
  });
});
