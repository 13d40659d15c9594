// End-to-end deadlines: grpc-timeout and x-sidecar-timeout shorten the route timeout, and the budget left is forwarded.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseGrpcTimeout } from '../../src/policies/timeout/deadline.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

describe('deadlines', () => {
  let sidecar: RunningSidecar;
  let port: number;
  let slow: TestUpstream; // answers after 1.5 s
  let fast: TestUpstream;
  const slowTimers = new Set<NodeJS.Timeout>();

  before(async () => {
    slow = await startUpstream((_req, res) => {
      const t = setTimeout(() => {
        slowTimers.delete(t);
        if (!res.destroyed) reply(res, 200, 'late\n');
      }, 1500);
      slowTimers.add(t);
    });
    fast = await startUpstream((_req, res) => reply(res, 200, 'ok\n'));
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - match: { prefix: /slow-allowed }
        cluster: slow
        timeout: 5s
        timeout_header_allowed: true
      - match: { prefix: /slow-route }
        cluster: slow
        timeout: 300ms
      - match: { prefix: /slow }
        cluster: slow
        timeout: 5s
      - match: { prefix: /fast-allowed }
        cluster: fast
        timeout: 5s
        timeout_header_allowed: true
      - match: { prefix: /fast }
        cluster: fast
        timeout: 5s
clusters:
  - name: slow
    endpoints: ["${slow.address}"]
  - name: fast
    endpoints: ["${fast.address}"]
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar?.stop();
    for (const t of slowTimers) clearTimeout(t);
    await slow?.close();
    await fast?.close();
  });

  it('grpc-timeout 200m gives UT (gRPC-shaped: DEADLINE_EXCEEDED) after ~200ms and the upstream sees the shorter budget', async () => {
    const before = slow.requests.length;
    const t0 = performance.now();
    const res = await httpRequest(port, {
      method: 'POST',
      path: '/slow/pkg.Svc/Method',
      headers: { 'content-type': 'application/grpc', 'grpc-timeout': '200m', te: 'trailers' },
      body: Buffer.from([0, 0, 0, 0, 0]),
    });
    const took = performance.now() - t0;
    // A gRPC request gets the sidecar's answer gRPC-shaped by default: 200, trailers-only, grpc-status 4.
    assert.equal(res.status, 200);
    assert.equal(res.headers['grpc-status'], '4');
    assert.equal(res.headers['x-sidecar-flag'], 'UT');
    assert.match(String(res.headers['x-sidecar-error']), /caller deadline, grpc-timeout: 200m/);
    assert.ok(took >= 180 && took < 1000, `took ${took}ms`);
    const seen = slow.requests[before];
    assert.ok(seen, 'the upstream saw the request');
    const grpc = parseGrpcTimeout(String(seen.headers['grpc-timeout']));
    assert.ok(grpc !== undefined && grpc <= 200 && grpc > 0, `grpc-timeout ${String(seen.headers['grpc-timeout'])}`);
    const ms = Number(seen.headers['x-sidecar-timeout']);
    assert.ok(ms <= 200 && ms > 0, `x-sidecar-timeout ${ms}`);
  });

  it('the route timeout fires when it is the earlier limit, and says so', async () => {
    const res = await httpRequest(port, { path: '/slow-route', headers: { 'grpc-timeout': '10S' } });
    assert.equal(res.status, 504);
    assert.match(String(res.headers['x-sidecar-error']), /after 300ms \(route timeout\)/);
  });

  it('a malformed grpc-timeout is ignored', async () => {
    const res = await httpRequest(port, { path: '/fast/x', headers: { 'grpc-timeout': 'soon' } });
    assert.equal(res.status, 200);
  });

  it('x-sidecar-timeout is honoured where the route allows it', async () => {
    const t0 = performance.now();
    const res = await httpRequest(port, { path: '/slow-allowed', headers: { 'x-sidecar-timeout': '200ms' } });
    const took = performance.now() - t0;
    assert.equal(res.status, 504);
    assert.match(String(res.headers['x-sidecar-error']), /caller deadline, x-sidecar-timeout: 200ms/);
    assert.ok(took >= 180 && took < 1000, `took ${took}ms`);

    const before = fast.requests.length;
    assert.equal((await httpRequest(port, { path: '/fast-allowed', headers: { 'x-sidecar-timeout': '250' } })).status, 200);
    const ms = Number(fast.requests[before]!.headers['x-sidecar-timeout']);
    assert.ok(ms <= 250 && ms > 0, `forwarded ${ms}`);
  });

  it('x-sidecar-timeout is ignored (and replaced by the route budget) where the route does not allow it', async () => {
    const before = fast.requests.length;
    const res = await httpRequest(port, { path: '/fast', headers: { 'x-sidecar-timeout': '1' } });
    assert.equal(res.status, 200);
    const seen = fast.requests[before]!;
    const ms = Number(seen.headers['x-sidecar-timeout']);
    assert.ok(ms > 4000 && ms <= 5000, `forwarded ${ms}`);
    assert.equal(seen.headers['grpc-timeout'], undefined, 'not a gRPC request');

    const t0 = performance.now();
    const slowRes = await httpRequest(port, { path: '/slow', headers: { 'x-sidecar-timeout': '100' } });
    assert.equal(slowRes.status, 200, 'waited for the slow upstream');
    assert.ok(performance.now() - t0 >= 1400);
  });
});
