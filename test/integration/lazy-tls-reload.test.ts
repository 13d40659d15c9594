// The TLS code loads only when a config has TLS: a sidecar started plaintext still takes a reload that adds a TLS
// listener, and serves HTTPS on it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import { CertFactory, type Ca, type Leaf } from '../helpers/certs.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { waitUntil } from '../helpers/strict-net.js';
import { freePort } from '../helpers/upstream.js';

const plain = `
listeners:
  - name: plain
    port: 0
    routes: [{ name: ok, match: { prefix: / }, direct_response: { status: 200, body: "plain" } }]
`;

function httpsGet(port: number, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/', ca, servername: 'localhost', timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

describe('TLS code loaded on demand', () => {
  let certs: CertFactory;
  let ca: Ca;
  let leaf: Leaf;
  let sidecar: RunningSidecar;

  before(async () => {
    certs = new CertFactory();
    ca = await certs.ca('ca');
    leaf = await certs.leaf(ca, { dns: ['localhost'], name: 'srv' });
    sidecar = await startSidecar(plain);
  });
  after(async () => {
    await sidecar?.stop();
  });

  it('a plaintext sidecar reloaded with a TLS listener serves HTTPS on it', { timeout: 20_000 }, async () => {
    const port = await freePort();
    sidecar.writeConfig(`${plain}
  - name: secure
    port: ${port}
    tls: { cert: ${leaf.certFile}, key: ${leaf.keyFile} }
    routes: [{ name: ok, match: { prefix: / }, direct_response: { status: 200, body: "secure" } }]
drain_delay: 0s
`);
    assert.ok(await waitUntil(() => /config reloaded/.test(sidecar.stderr()), 10_000), sidecar.stderr());
    const res = await httpsGet(port, readFileSync(ca.certFile, 'utf8'));
    assert.deepEqual(res, { status: 200, body: 'secure' });
  });
});
