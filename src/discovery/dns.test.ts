// DNS source specifics against a real UDP DNS responder on 127.0.0.1: A/AAAA with the cluster's port, TTL floor and
// ceiling, SRV priority/weight/port, and failed lookups that keep the last good set.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDnsServer, type TestDnsServer } from '../../test/helpers/dns-server.js';
import { DnsSource, nextLookupMs, srvEndpoints } from './dns.js';
import { RecordingSink } from './testing.js';

describe('dns source: pure parts', () => {
  it('paces lookups by the smallest TTL, held between floor and ceiling', () => {
    assert.equal(nextLookupMs([30, 5, 60], 1_000, 60_000), 5_000);
    assert.equal(nextLookupMs([0], 1_000, 60_000), 1_000);
    assert.equal(nextLookupMs([86_400], 1_000, 60_000), 60_000);
    assert.equal(nextLookupMs([], 1_000, 60_000), 60_000);
  });

  it('keeps every SRV priority as the endpoint priority level, best first; weight 0 counts as 1; IPv6 targets are bracketed', () => {
    const ips: Record<string, string[]> = { a: ['10.0.0.1'], b: ['10.0.0.2'], c: ['::1'] };
    const list = srvEndpoints(
      [
        { priority: 10, weight: 0, port: 81, name: 'a' },
        { priority: 10, weight: 7, port: 82, name: 'c' },
        { priority: 20, weight: 5, port: 83, name: 'b' },
      ],
      (t) => ips[t] ?? [],
    );
    assert.deepEqual(list, [
      { address: '10.0.0.1:81', weight: 1, priority: 10 },
      { address: '[::1]:82', weight: 7, priority: 10 },
      { address: '10.0.0.2:83', weight: 5, priority: 20 },
    ]);
  });
});

describe('dns source against a real DNS server', () => {
  let server: TestDnsServer;
  before(async () => {
    server = await startDnsServer();
  });
  after(async () => server.close());

  it('A records: the cluster port, TTL within floor/ceiling, re-resolved off the request path', async () => {
    server.zone.set('web.test', { A: [{ address: '10.1.0.1', ttl: 1 }, { address: '10.1.0.2', ttl: 1 }] });
    const source = new DnsSource({ name: 'web.test', type: 'A', port: 8080, servers: [server.address], ttlFloorMs: 100, ttlCeilingMs: 300, timeoutMs: 200 });
    const sink = new RecordingSink();
    source.start(sink);
    try {
      await sink.waitFor(() => sink.updates.length === 1, 'the first answer');
      assert.deepEqual(sink.latest, ['10.1.0.1:8080*1', '10.1.0.2:8080*1']);
      assert.equal(source.nextInMs, 300, 'TTL 1 s is held to the 300 ms ceiling');
      server.zone.set('web.test', { A: [{ address: '10.1.0.3', ttl: 0 }] });
      await sink.waitFor(() => sink.latest?.join() === '10.1.0.3:8080*1', 'the changed record', 3000);
      assert.equal(source.nextInMs, 100, 'TTL 0 is raised to the 100 ms floor');
    } finally {
      source.stop();
    }
  });

  it('AAAA and A_AAAA records give bracketed IPv6 endpoints', async () => {
    server.zone.set('v6.test', { A: [{ address: '10.2.0.1', ttl: 0 }], AAAA: [{ address: '::1', ttl: 0 }, { address: 'fd00::2', ttl: 0 }] });
    const only6 = new DnsSource({ name: 'v6.test', type: 'AAAA', port: 9, servers: [server.address], ttlFloorMs: 100, ttlCeilingMs: 1000, timeoutMs: 200 });
    const both = new DnsSource({ name: 'v6.test', type: 'A_AAAA', port: 9, servers: [server.address], ttlFloorMs: 100, ttlCeilingMs: 1000, timeoutMs: 200 });
    const s6 = new RecordingSink();
    const sBoth = new RecordingSink();
    only6.start(s6);
    both.start(sBoth);
    try {
      await s6.waitFor(() => s6.updates.length > 0, 'AAAA');
      await sBoth.waitFor(() => sBoth.updates.length > 0, 'A_AAAA');
      assert.deepEqual(s6.latest, ['[::1]:9*1', '[fd00::2]:9*1']);
      assert.deepEqual(sBoth.latest, ['10.2.0.1:9*1', '[::1]:9*1', '[fd00::2]:9*1']);
    } finally {
      only6.stop();
      both.stop();
    }
  });

  it('SRV: every priority with its weights and ports; a failed lookup keeps the set and is reported each time', async () => {
    server.zone.set('_http._tcp.api.test', {
      SRV: [
        { priority: 1, weight: 3, port: 7001, target: 'a.api.test', ttl: 0 },
        { priority: 1, weight: 1, port: 7002, target: 'b.api.test', ttl: 0 },
        { priority: 2, weight: 9, port: 7003, target: 'c.api.test', ttl: 0 },
      ],
    });
    server.zone.set('a.api.test', { A: [{ address: '10.3.0.1', ttl: 0 }] });
    server.zone.set('b.api.test', { A: [{ address: '10.3.0.2', ttl: 0 }] });
    server.zone.set('c.api.test', { A: [{ address: '10.3.0.3', ttl: 0 }] });
    const source = new DnsSource({ name: '_http._tcp.api.test', type: 'SRV', servers: [server.address], ttlFloorMs: 50, ttlCeilingMs: 1000, timeoutMs: 100 });
    const sink = new RecordingSink();
    source.start(sink);
    try {
      await sink.waitFor(() => sink.updates.length === 1, 'the SRV answer');
      assert.deepEqual(sink.latest, ['10.3.0.1:7001*3', '10.3.0.2:7002*1', '10.3.0.3:7003*9']);
      assert.deepEqual(sink.updates[0]!.map((e) => `${e.address}@${e.priority}`), ['10.3.0.1:7001@1', '10.3.0.2:7002@1', '10.3.0.3:7003@2']);
      server.mode = 'silent';
      await sink.waitFor(() => sink.errors.length >= 2, 'two failed lookups', 5000);
      assert.match(sink.errors[0]!, /dns SRV _http._tcp.api.test: ETIMEOUT/);
      server.mode = 'ok';
      server.zone.delete('_http._tcp.api.test');
      const n = sink.errors.length;
      await sink.waitFor(() => sink.errors.length > n && /ENOTFOUND/.test(sink.errors.at(-1)!), 'NXDOMAIN reported');
      assert.equal(sink.updates.length, 1, 'neither an outage nor a vanished name replaced the last good set');
    } finally {
      source.stop();
    }
  });
});
