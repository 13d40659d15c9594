// Upstream connection pooling: many sequential requests from one keep-alive client reuse a handful of upstream
// connections, and the admin /clusters endpoint accounts for every request.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startH2Upstream, startUpstream, type TestUpstream } from '../helpers/upstream.js';

const REQUESTS = 1000;

interface ClusterState {
  clusters: Array<{
    name: string;
    protocol: string;
    endpoints: Array<{ address: string; requests: number; failures: number; active_requests: number; connections: number }>;
  }>;
}

function get(agent: http.Agent, port: number, path: string, method = 'GET', body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) };
    const req = http.request({ host: '127.0.0.1', port, path, method, agent, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`request ${path} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function clusters(adminPort: number): Promise<ClusterState> {
  const agent = new http.Agent({ keepAlive: false });
  try {
    const r = await get(agent, adminPort, '/clusters');
    assert.equal(r.status, 200);
    return JSON.parse(r.body) as ClusterState;
  } finally {
    agent.destroy();
  }
}

describe('protocol: upstream connection pooling', () => {
  let upstream: TestUpstream;
  let h2up: Awaited<ReturnType<typeof startH2Upstream>>;
  let sidecar: RunningSidecar;

  before(async () => {
    upstream = await startUpstream((req, res, body) => {
      const text = `${req.method} ${req.url} ${body.length}`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
    h2up = await startH2Upstream((stream, headers) => {
      stream.resume();
      stream.on('end', () => {
        const text = `${headers[':method']} ${headers[':path']}`;
        stream.respond({ ':status': 200, 'content-length': Buffer.byteLength(text) });
        stream.end(text);
      });
    });
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { name: h2, match: { prefix: /h2 }, cluster: h2app }
      - { name: all, match: { prefix: / }, cluster: app }
clusters:
  - name: app
    endpoints: ["${upstream.address}"]
  - name: h2app
    protocol: h2c
    endpoints: ["${h2up.address}"]
`);
  });
  after(async () => {
    await sidecar?.stop();
    await upstream?.close();
    await h2up?.close();
  });

  it(`reuses at most 4 upstream connections for ${REQUESTS} sequential keep-alive requests, and /clusters counts them`, { timeout: 60_000 }, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const downstreamSockets = new Set<unknown>();
    try {
      for (let i = 0; i < REQUESTS; i++) {
        const post = i % 10 === 9;
        const r = await get(agent, sidecar.ports.in!, `/req/${i}`, post ? 'POST' : 'GET', post ? `body-${i}` : undefined);
        assert.equal(r.status, 200, `request ${i}: ${r.body}`);
        assert.equal(r.body, `${post ? 'POST' : 'GET'} /req/${i} ${post ? `body-${i}`.length : 0}`);
        for (const list of Object.values(agent.freeSockets)) for (const s of list ?? []) downstreamSockets.add(s);
      }
    } finally {
      agent.destroy();
    }
    assert.equal(downstreamSockets.size, 1, 'the client itself used one keep-alive connection');
    assert.equal(upstream.requests.length, REQUESTS);
    assert.ok(upstream.connections() >= 1);
    assert.ok(upstream.connections() <= 4, `upstream accepted ${upstream.connections()} connections for ${REQUESTS} sequential requests`);

    const state = await clusters(sidecar.adminPort);
    const app = state.clusters.find((c) => c.name === 'app');
    assert.ok(app, `/clusters lists app: ${JSON.stringify(state)}`);
    const ep = app.endpoints.find((e) => e.address === upstream.address);
    assert.ok(ep, `/clusters lists the endpoint ${upstream.address}`);
    assert.equal(ep.requests, REQUESTS);
    assert.equal(ep.failures, 0);
    assert.equal(ep.active_requests, 0);
    assert.ok(ep.connections >= 1 && ep.connections <= 4, `pooled connections reported: ${ep.connections}`);
  });

  it('multiplexes sequential requests to an h2c cluster over one upstream session', { timeout: 60_000 }, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 200; i++) {
        const r = await get(agent, sidecar.ports.in!, `/h2/${i}`);
        assert.equal(r.status, 200);
        assert.equal(r.body, `GET /h2/${i}`);
      }
    } finally {
      agent.destroy();
    }
    assert.equal(h2up.sessions(), 1, `h2c upstream sessions: ${h2up.sessions()}`);
    const state = await clusters(sidecar.adminPort);
    const ep = state.clusters.find((c) => c.name === 'h2app')?.endpoints[0];
    assert.ok(ep);
    assert.equal(ep.requests, 200);
    assert.equal(ep.connections, 1);
  });
});
