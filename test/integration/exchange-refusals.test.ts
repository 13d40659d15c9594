// One exchange for both protocols: a request refused before dispatch is counted and access-logged alike over HTTP/1.1
// and HTTP/2 (HTTP/2 refusals used to be counted only), with the same answer text.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { accessLogFor, httpRequest } from '../helpers/strict-net.js';

function h2Get(port: number, path: string): Promise<{ status: number; body: string; flag: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const req = session.request({ ':path': path });
    let status = 0;
    let flag = '';
    let body = '';
    req.on('response', (h) => {
      status = Number(h[':status']);
      flag = String(h['x-sidecar-flag']);
    });
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      session.close();
      resolve({ status, body, flag });
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.close());
    req.end();
  });
}

describe('refusals before dispatch, by protocol', () => {
  let sidecar: RunningSidecar;
  let port: number;

  before(async () => {
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    limits: { max_uri_length: 64 }
    routes:
      - { match: { prefix: / }, direct_response: { status: 200, body: "ok" } }
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar.stop();
  });

  it('an over-long target is answered 414 and logged over HTTP/2 as over HTTP/1.1', async () => {
    const h1Path = `/h1-${'a'.repeat(80)}`;
    const h1 = await httpRequest(port, { path: h1Path });
    assert.equal(h1.status, 414);
    const h2Path = `/h2-${'a'.repeat(80)}`;
    const h2 = await h2Get(port, h2Path);
    assert.equal(h2.status, 414);
    assert.equal(h2.flag, 'DPE');
    assert.equal(h2.body, h1.body, 'one renderer: the same answer text on both protocols');
    const l1 = await accessLogFor(sidecar, h1Path);
    const l2 = await accessLogFor(sidecar, h2Path);
    assert.equal(l1.status, 414);
    assert.equal(l2.status, 414);
    assert.equal(l2.response_flag, 'DPE');
    assert.equal(l2.protocol, 'HTTP/2');
  });
});
