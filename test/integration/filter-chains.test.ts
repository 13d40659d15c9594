// Listener-level and route-level filter chains from the registry, per-route overrides, and the legacy keys beside them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

describe('filter chains', () => {
  let sidecar: RunningSidecar;
  let port: number;
  let echo: TestUpstream;

  before(async () => {
    echo = await startUpstream((req, res) => reply(res, 200, JSON.stringify(req.headers)));
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    filters:
      - type: header_mutation
        config: { request: { set: { x-guard: listener } }, response: { set: { x-guarded: "yes" } } }
      - type: fault
        config: { header_control: true }
    routes:
      - match: { prefix: /plain }
        cluster: echo
        filter_overrides: { header_mutation: { disabled: true } }
      - match: { prefix: /own }
        cluster: echo
        filter_overrides: { header_mutation: { config: { request: { set: { x-guard: route } } } } }
      - match: { prefix: /both }
        cluster: echo
        request_headers: { set: { x-legacy: "1" } }
        filters:
          - { type: header_mutation, config: { request: { add: { x-route-filter: "1" } } } }
          - { type: fault, disabled: true, config: { abort: { status: 500 } } }
      - match: { prefix: /direct }
        direct_response: { status: 200, body: "hi" }
clusters:
  - { name: echo, endpoints: ["${echo.address}"] }
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar.stop();
    await echo.close();
  });

  it('a listener filter runs for every route, before the route pipeline', async () => {
    const r = await httpRequest(port, { path: '/both' });
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as Record<string, string>;
    assert.equal(seen['x-guard'], 'listener');
    assert.equal(seen['x-legacy'], '1');
    assert.equal(seen['x-route-filter'], '1');
    assert.equal(r.headers['x-guarded'], 'yes');
    const d = await httpRequest(port, { path: '/direct' });
    assert.equal(d.body, 'hi');
    assert.equal(d.headers['x-guarded'], 'yes');
  });

  it('a route can disable a listener filter, or run it with its own config', async () => {
    const plain = await httpRequest(port, { path: '/plain' });
    assert.equal((JSON.parse(plain.body) as Record<string, string>)['x-guard'], undefined);
    assert.equal(plain.headers['x-guarded'], undefined);
    const own = await httpRequest(port, { path: '/own' });
    assert.equal((JSON.parse(own.body) as Record<string, string>)['x-guard'], 'route');
    assert.equal(own.headers['x-guarded'], undefined);
  });

  it('listener filters see requests that match no route (they answer before the 404 would)', async () => {
    const r = await httpRequest(port, { path: '/nowhere', headers: { 'x-sidecar-fault-abort': '401' } });
    assert.equal(r.status, 401);
    assert.equal(r.headers['x-sidecar-flag'], 'FI');
    const nr = await httpRequest(port, { path: '/nowhere' });
    assert.equal(nr.status, 404);
    assert.equal(nr.headers['x-sidecar-flag'], 'NR');
  });

  it('a disabled route filter is left out', async () => {
    const r = await httpRequest(port, { path: '/both' });
    assert.equal(r.status, 200);
  });
});
