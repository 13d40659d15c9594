// Traffic splitting and load balancing: weighted_clusters, round_robin (plain and weighted endpoints),
// ring_hash on a header, and least_request steering away from busy endpoints.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest, waitUntil } from '../helpers/strict-net.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

/** An upstream answering with its name; requests to /hold/* wait until released. */
interface Named {
  readonly name: string;
  readonly up: TestUpstream;
  readonly held: http.ServerResponse[];
  release(): void;
}

async function named(name: string): Promise<Named> {
  const held: http.ServerResponse[] = [];
  const up = await startUpstream((req: http.IncomingMessage, res: http.ServerResponse) => {
    const answer = (): void => {
      const body = name;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (req.url?.startsWith('/hold/')) {
      held.push(res);
      (res as unknown as { answer: () => void }).answer = answer;
    } else answer();
  });
  return {
    name,
    up,
    held,
    release() {
      for (const r of held.splice(0)) (r as unknown as { answer: () => void }).answer();
    },
  };
}

describe('traffic splitting and load balancing', () => {
  const all: Named[] = [];
  let stable: Named;
  let canary: Named;
  let rr: Named[];
  let wrr: Named[];
  let rh: Named[];
  let lr: Named[];
  let sidecar: RunningSidecar;
  let port: number;
  let agent: http.Agent;

  before(async () => {
    stable = await named('stable');
    canary = await named('canary');
    rr = [await named('rr-a'), await named('rr-b'), await named('rr-c')];
    wrr = [await named('wrr-heavy'), await named('wrr-light')];
    rh = [await named('rh-a'), await named('rh-b'), await named('rh-c')];
    lr = [await named('lr-a'), await named('lr-b')];
    all.push(stable, canary, ...rr, ...wrr, ...rh, ...lr);
    const eps = (xs: Named[]): string => xs.map((x) => `"${x.up.address}"`).join(', ');
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - name: split
        match: { prefix: /split }
        weighted_clusters: [{ cluster: stable, weight: 80 }, { cluster: canary, weight: 20 }]
      - { name: all_canary, match: { prefix: /zero }, weighted_clusters: [{ cluster: stable, weight: 0 }, { cluster: canary, weight: 1 }] }
      - { name: rr, match: { prefix: /rr }, cluster: rr }
      - { name: wrr, match: { prefix: /wrr }, cluster: wrr }
      - { name: rh, match: { prefix: /rh }, cluster: rh }
      - { name: lr, match: { prefix: /lr }, cluster: lr }
      - { name: lr_hold, match: { prefix: /hold/ }, cluster: lr, timeout: 0 }
clusters:
  - { name: stable, endpoints: ["${stable.up.address}"] }
  - { name: canary, endpoints: ["${canary.up.address}"] }
  - { name: rr, endpoints: [${eps(rr)}], lb: { policy: round_robin } }
  - name: wrr
    endpoints: [{ address: "${wrr[0]!.up.address}", weight: 3 }, { address: "${wrr[1]!.up.address}", weight: 1 }]
    lb: { policy: round_robin }
  - { name: rh, endpoints: [${eps(rh)}], lb: { policy: ring_hash, hash_on: { header: x-user } } }
  - { name: lr, endpoints: [${eps(lr)}], lb: { policy: least_request } }
`);
    port = sidecar.ports.in!;
    agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  });

  after(async () => {
    agent.destroy();
    for (const n of all) n.release();
    await sidecar.stop();
    for (const n of all) await n.up.close();
  });

  async function get(path: string, headers: http.OutgoingHttpHeaders = {}): Promise<string> {
    const res = await httpRequest(port, { path, headers: { host: 'app.local', ...headers }, agent });
    assert.equal(res.status, 200, `${path}: ${res.status} ${res.body}`);
    return res.body;
  }

  async function countMany(n: number, concurrency: number, path: (i: number) => string, headers?: (i: number) => http.OutgoingHttpHeaders): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < n) {
        const i = next++;
        const who = await get(path(i), headers?.(i));
        counts.set(who, (counts.get(who) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return counts;
  }

  it('weighted_clusters 80/20 over 1000 requests lands within ±5 points', async () => {
    const counts = await countMany(1000, 16, (i) => `/split/${i}`);
    const s = counts.get('stable') ?? 0;
    const c = counts.get('canary') ?? 0;
    assert.equal(s + c, 1000, JSON.stringify([...counts]));
    assert.ok(s >= 750 && s <= 850, `stable got ${s}/1000`);
    assert.ok(c >= 150 && c <= 250, `canary got ${c}/1000`);
  });

  it('weighted_clusters never picks a weight-0 cluster', async () => {
    const before = stable.up.requests.length;
    const counts = await countMany(100, 8, (i) => `/zero/${i}`);
    assert.equal(counts.get('canary'), 100);
    assert.equal(stable.up.requests.length, before);
  });

  it('round_robin spreads sequential requests evenly and in rotation', async () => {
    const order: string[] = [];
    for (let i = 0; i < 30; i++) order.push(await get(`/rr/${i}`));
    for (const n of rr) assert.equal(order.filter((x) => x === n.name).length, 10, `${n.name}: ${order.join(',')}`);
    for (let i = 0; i + 3 <= order.length; i += 3) assert.equal(new Set(order.slice(i, i + 3)).size, 3, `not a rotation: ${order.join(',')}`);
  });

  it('round_robin honours endpoint weights (3:1)', async () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const who = await get(`/wrr/${i}`);
      counts.set(who, (counts.get(who) ?? 0) + 1);
    }
    assert.equal(counts.get('wrr-heavy'), 30, JSON.stringify([...counts]));
    assert.equal(counts.get('wrr-light'), 10);
  });

  it('ring_hash on a header sends each key to the same endpoint every time, and spreads keys', async () => {
    const owner = new Map<string, string>();
    for (let round = 0; round < 4; round++) {
      for (let k = 0; k < 30; k++) {
        const key = `user-${k}`;
        const who = await get(`/rh/${round}/${k}`, { 'x-user': key });
        const first = owner.get(key);
        if (first === undefined) owner.set(key, who);
        else assert.equal(who, first, `${key} moved from ${first} to ${who} in round ${round}`);
      }
    }
    assert.ok(new Set(owner.values()).size >= 2, `30 keys all went to ${[...new Set(owner.values())].join(',')}`);
  });

  it('ring_hash keeps a key on its endpoint under concurrency', async () => {
    const seen = new Set<string>();
    await Promise.all(Array.from({ length: 40 }, async (_, i) => seen.add(await get(`/rh/c/${i}`, { 'x-user': 'sticky-user' }))));
    assert.equal(seen.size, 1, [...seen].join(','));
  });

  it('least_request balances held requests and steers new ones to the idle endpoint', async () => {
    const [a, b] = lr as [Named, Named];
    // Open 4 requests that stay in flight, one at a time: each goes to the endpoint with fewer active requests.
    const pending: Array<Promise<string>> = [];
    for (let i = 0; i < 4; i++) {
      pending.push(get(`/hold/${i}`));
      assert.ok(await waitUntil(() => a.held.length + b.held.length === i + 1, 3000), 'held request did not arrive');
    }
    assert.equal(a.held.length, 2, `held split ${a.held.length}/${b.held.length}`);
    assert.equal(b.held.length, 2);
    // Free one endpoint; the other keeps 2 in flight. New requests must all go to the free one.
    b.release();
    assert.ok(await waitUntil(() => b.up.requests.length >= 2 && b.held.length === 0, 2000));
    await new Promise((r) => setTimeout(r, 100)); // let the released responses finish on the proxy side
    const counts = new Map<string, number>();
    for (let i = 0; i < 20; i++) {
      const who = await get(`/lr/${i}`);
      counts.set(who, (counts.get(who) ?? 0) + 1);
    }
    assert.equal(counts.get('lr-b'), 20, `new requests went ${JSON.stringify([...counts])} while lr-a had 2 in flight`);
    a.release();
    const results = await Promise.all(pending);
    assert.deepEqual(results.sort(), ['lr-a', 'lr-a', 'lr-b', 'lr-b']);
  });
});
