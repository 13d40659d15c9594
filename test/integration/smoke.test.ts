// Smoke test: a request goes app -> sidecar -> upstream and back, over HTTP/1.1 and HTTP/2, and is logged.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { curl, parseCurlI } from '../helpers/client.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

describe('smoke', () => {
  let upstream: TestUpstream;
  let sidecar: RunningSidecar;

  before(async () => {
    upstream = await startUpstream();
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes: [{ name: all, match: { prefix: / }, cluster: app }]
clusters:
  - name: app
    endpoints: ["${upstream.address}"]
`);
  });
  after(async () => {
    await sidecar.stop();
    await upstream.close();
  });

  it('proxies HTTP/1.1 and HTTP/2 (prior knowledge) on the same port', async () => {
    const h1 = parseCurlI((await curl(['-i', `http://127.0.0.1:${sidecar.ports.in}/a?b=1`])).stdout);
    assert.equal(h1.status, 200);
    assert.equal((JSON.parse(h1.body) as { url: string }).url, '/a?b=1');
    const h2 = await curl(['-i', '--http2-prior-knowledge', `http://127.0.0.1:${sidecar.ports.in}/h2`]);
    assert.match(h2.stdout, /^HTTP\/2 200/);
    const log = await sidecar.waitForAccessLog(2);
    assert.deepEqual(log.map((l) => l.protocol), ['HTTP/1.1', 'HTTP/2']);
    assert.equal(log[0]!.route, 'all');
    assert.equal(log[0]!.upstream, upstream.address);
  });
});
