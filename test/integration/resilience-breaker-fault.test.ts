// Circuit breakers (max_requests against a slow upstream) and fault injection (delay and abort, by percent and by header).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { accessLogFor, httpRequest } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

describe('circuit breakers and fault injection', () => {
  let sidecar: RunningSidecar;
  let port: number;
  let slow: TestUpstream;
  let fast: TestUpstream;

  before(async () => {
    slow = await startUpstream((_req, res) => setTimeout(() => reply(res, 200, 'slow\n'), 500));
    fast = await startUpstream((req, res) => reply(res, 200, JSON.stringify(req.headers)));
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { match: { prefix: /slow }, cluster: slow }
      - match: { prefix: /delay }
        cluster: fast
        fault: { delay: { duration: 300ms, percent: 100 } }
      - match: { prefix: /abort }
        cluster: fast
        fault: { abort: { status: 418, percent: 100 } }
      - match: { prefix: /half }
        cluster: fast
        fault: { abort: { status: 503, percent: 50 } }
      - match: { prefix: /headers }
        cluster: fast
        fault: { header_control: true }
      - match: { prefix: /no-control }
        cluster: fast
        fault: { delay: { duration: 1ms, percent: 0 } }
      - match: { prefix: /late-fault }
        cluster: fast
        timeout: 200ms
        fault: { delay: { duration: 1s, percent: 100 } }
clusters:
  - name: slow
    endpoints: ["${slow.address}"]
    circuit_breakers: { max_requests: 2 }
  - { name: fast, endpoints: ["${fast.address}"] }
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar.stop();
    await slow.close();
    await fast.close();
  });

  it('max_requests 2: the third concurrent request fails fast with 503 UO naming the threshold and cluster', async () => {
    const started = performance.now();
    const results = await Promise.all(
      [0, 1, 2].map(async (i) => {
        // Stagger slightly so the third surely arrives while the first two are in flight.
        await new Promise((r) => setTimeout(r, i * 50));
        const res = await httpRequest(port, { path: `/slow/${i}` });
        return { ...res, ms: performance.now() - started };
      }),
    );
    const ok = results.filter((r) => r.status === 200);
    const shed = results.filter((r) => r.status === 503);
    assert.equal(ok.length, 2, JSON.stringify(results.map((r) => [r.status, r.headers['x-sidecar-error']])));
    assert.equal(shed.length, 1);
    const s = shed[0]!;
    assert.equal(s.headers['x-sidecar-flag'], 'UO');
    assert.match(String(s.headers['x-sidecar-error']), /max_requests/);
    assert.match(String(s.headers['x-sidecar-error']), /cluster slow/);
    assert.ok(s.ms < 400, `the overflow answer took ${s.ms} ms`);
    assert.equal(slow.requests.length, 2, 'the shed request reached the upstream');
    const log = await accessLogFor(sidecar, '/slow/2');
    assert.equal(log.response_flag, 'UO');
    // The breaker frees its slots: once the others are done, requests pass again.
    const again = await httpRequest(port, { path: '/slow/again' });
    assert.equal(again.status, 200);
    const m = (await httpRequest(sidecar.adminPort, { path: '/metrics' })).body;
    assert.match(m, /sidecar_circuit_breaker_open_total\{[^}]*threshold="max_requests"[^}]*\} 1/);
  });

  it('fault delay at 100%: every request is held back by the configured duration', async () => {
    const t0 = performance.now();
    const res = await httpRequest(port, { path: '/delay/a' });
    const ms = performance.now() - t0;
    assert.equal(res.status, 200);
    assert.ok(ms >= 280 && ms < 1500, `took ${ms} ms for a 300ms delay`);
  });

  it('a fault delay counts against the route timeout (504 UT)', async () => {
    const res = await httpRequest(port, { path: '/late-fault/a' });
    assert.equal(res.status, 504);
    assert.equal(res.headers['x-sidecar-flag'], 'UT');
  });

  it('fault abort at 100%: answered with the status and flag FI, never forwarded', async () => {
    const before = fast.requests.length;
    const res = await httpRequest(port, { path: '/abort/a', method: 'POST', body: 'ignored' });
    assert.equal(res.status, 418);
    assert.equal(res.headers['x-sidecar-flag'], 'FI');
    assert.match(String(res.headers['x-sidecar-error']), /fault injected/);
    assert.equal(fast.requests.length, before);
    const log = await accessLogFor(sidecar, '/abort/a');
    assert.equal(log.response_flag, 'FI');
    assert.equal(log.status, 418);
  });

  it('fault abort at 50%: about half of the requests are aborted', async () => {
    let aborted = 0;
    const n = 100;
    for (let i = 0; i < n; i++) {
      const res = await httpRequest(port, { path: `/half/${i}` });
      if (res.status === 503) {
        assert.equal(res.headers['x-sidecar-flag'], 'FI');
        aborted++;
      } else assert.equal(res.status, 200);
    }
    assert.ok(aborted >= 25 && aborted <= 75, `${aborted} of ${n} aborted at 50%`);
  });

  it('header_control: x-sidecar-fault-abort and x-sidecar-fault-delay-ms ask for a fault; the headers never reach the upstream', async () => {
    const abort = await httpRequest(port, { path: '/headers/a', headers: { 'x-sidecar-fault-abort': '503' } });
    assert.equal(abort.status, 503);
    assert.equal(abort.headers['x-sidecar-flag'], 'FI');

    const t0 = performance.now();
    const delayed = await httpRequest(port, { path: '/headers/b', headers: { 'x-sidecar-fault-delay-ms': '250' } });
    const ms = performance.now() - t0;
    assert.equal(delayed.status, 200);
    assert.ok(ms >= 230, `took ${ms} ms for a 250 ms header delay`);
    const seen = JSON.parse(delayed.body) as Record<string, string>;
    assert.equal(seen['x-sidecar-fault-delay-ms'], undefined);

    const plain = await httpRequest(port, { path: '/headers/c' });
    assert.equal(plain.status, 200);
    const m = (await httpRequest(sidecar.adminPort, { path: '/metrics' })).body;
    const line = m.split('\n').find((l) => l.startsWith('sidecar_faults_injected_total{') && l.includes('route="route_4"') && l.includes('kind="abort"'));
    assert.ok(line?.endsWith(' 1'), String(line));
  });

  it('without header_control the fault headers are ignored', async () => {
    const res = await httpRequest(port, { path: '/no-control/a', headers: { 'x-sidecar-fault-abort': '503' } });
    assert.equal(res.status, 200);
  });
});
