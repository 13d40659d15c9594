// A gRPC client gets the sidecar's own answers gRPC-shaped (200, trailers-only, grpc-status) by default; a plain client
// gets text, and so does every client of a listener with grpc_local_answers: false.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';

function h2Request(port: number, path: string, headers: Record<string, string>): Promise<{ headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': path, ...headers });
    let got: http2.IncomingHttpHeaders = {};
    let body = '';
    req.on('response', (h) => (got = h));
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      session.close();
      resolve({ headers: got, body });
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.close());
    req.end();
  });
}

describe('local answers by client kind', () => {
  let sidecar: RunningSidecar;
  let port: number;

  before(async () => {
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { match: { prefix: /down }, cluster: down }
  - name: plain
    port: 0
    grpc_local_answers: false
    routes:
      - { match: { prefix: /down }, cluster: down }
clusters:
  - { name: down, endpoints: ["127.0.0.1:1"], connect_timeout: 1s }
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar.stop();
  });

  it('no route: UNIMPLEMENTED for gRPC, 404 text otherwise', async () => {
    const g = await h2Request(port, '/pkg.Svc/Method', { 'content-type': 'application/grpc' });
    assert.equal(g.headers[':status'], 200);
    assert.equal(g.headers['grpc-status'], '12');
    assert.equal(g.headers['x-sidecar-flag'], 'NR');
    assert.match(decodeURIComponent(String(g.headers['grpc-message'])), /no route/);
    assert.equal(g.body, '');
    const t = await h2Request(port, '/pkg.Svc/Method', {});
    assert.equal(t.headers[':status'], 404);
    assert.match(t.body, /^404 Not Found: no route/);
  });

  it('with grpc_local_answers: false, gRPC clients get the HTTP status and text, as every client', async () => {
    const g = await h2Request(sidecar.ports.plain!, '/down/x', { 'content-type': 'application/grpc' });
    assert.equal(g.headers[':status'], 503);
    assert.equal(g.headers['grpc-status'], undefined);
    assert.match(g.body, /^503 Service Unavailable: /);
  });

  it('upstream connect failure: UNAVAILABLE for gRPC', async () => {
    const g = await h2Request(port, '/down/x', { 'content-type': 'application/grpc+proto' });
    assert.equal(g.headers[':status'], 200);
    assert.equal(g.headers['grpc-status'], '14');
    assert.equal(g.headers['x-sidecar-flag'], 'UF');
  });
});
