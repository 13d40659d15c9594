// Path normalization on the wire: the path-confusion bypass shapes never reach the upstream behind the catch-all route
// as a path the upstream would read as /admin; they are refused (400 DPE) or routed to the /admin rule. HTTP/1.1 over
// a raw socket (so no client library cleans the target first), HTTP/2 with node:http2, and a WebSocket upgrade.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { rawRequest } from '../helpers/client.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

/** What a lenient upstream (Tomcat, Spring, many frameworks) would make of a path: decoded, \ as /, ;params gone. */
function lenientView(p: string): string {
  let s = p.split('?')[0]!;
  try {
    s = decodeURIComponent(s);
  } catch {
    /* keep */
  }
  s = s.replace(/\\/g, '/').replace(/;[^/]*/g, '');
  const out: string[] = [];
  for (const seg of s.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return '/' + out.join('/').toLowerCase();
}

const SHAPES = [
  '/public/..%2Fadmin',
  '/public/..%2fadmin',
  '//admin',
  '///admin/x',
  '/admin%2f',
  '/admin;x',
  '/admin;jsessionid=1/x',
  '/public/..;/admin',
  '/%2e%2e/admin',
  '/public/%2e%2e/admin',
  '/public/.%2E/admin',
  '/public/../admin',
  '/./admin',
  '/%61dmin',
  '/public\\..\\admin',
  '/public/..%5Cadmin',
  '/admin%00',
  '/admin#x',
  '/public/..%2F..%2Fadmin',
];

describe('path normalization before routing', () => {
  let sidecar: RunningSidecar;
  let port: number;
  let app: TestUpstream;
  const seen: string[] = [];

  before(async () => {
    app = await startUpstream((req, res) => {
      seen.push(req.url ?? '');
      reply(res, 200, `app saw ${req.url}`);
    });
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - match: { prefix: /admin }
        direct_response: { status: 403, body: "admin is protected" }
      - match: { prefix: / }
        cluster: app
  - name: lower
    port: 0
    path_normalization: { case: lower, encoded_slashes: decode, backslashes: convert }
    routes:
      - match: { prefix: /admin }
        direct_response: { status: 403, body: "admin is protected" }
      - match: { prefix: / }
        cluster: app
clusters:
  - { name: app, endpoints: ["${app.address}"] }
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar.stop();
    await app.close();
  });

  const get = (p: number, target: string): Promise<{ status: number | undefined; data: string }> =>
    rawRequest(p, `GET ${target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`, 3000);

  for (const listener of ['in', 'lower'] as const) {
    it(`HTTP/1.1 (${listener}): no bypass shape reaches the app as /admin`, async () => {
      for (const shape of [...SHAPES, ...(listener === 'lower' ? ['/ADMIN', '/Admin/x'] : [])]) {
        seen.length = 0;
        const r = await get(sidecar.ports[listener]!, shape);
        assert.ok(r.status === 400 || r.status === 403, `${listener} ${shape}: got ${r.status} ${r.data.slice(0, 200)}`);
        for (const s of seen) assert.ok(!lenientView(s).startsWith('/admin'), `${shape} reached the app as ${s}`);
      }
    });
  }

  it('the upstream receives the normalized path (query untouched)', async () => {
    seen.length = 0;
    const r = await get(port, '//public/./a/../%7Euser;v=1/x?q=/../%2F');
    assert.equal(r.status, 200);
    assert.deepEqual(seen, ['/public/~user/x?q=/../%2F']);
  });

  it('a double-encoded dot segment stays data (decoded once only): the app sees %252e, not ..', async () => {
    seen.length = 0;
    const r = await get(port, '/public/%252e%252e/admin');
    assert.equal(r.status, 200);
    assert.deepEqual(seen, ['/public/%252e%252e/admin']);
  });

  it('/ADMIN on a case-sensitive listener is not the /admin route, and the app gets /ADMIN as data', async () => {
    seen.length = 0;
    const r = await get(port, '/ADMIN');
    assert.equal(r.status, 200);
    assert.deepEqual(seen, ['/ADMIN']);
  });

  it('a refusal says why, with flag DPE', async () => {
    const r = await get(port, '/public/..%2Fadmin');
    assert.equal(r.status, 400);
    assert.match(r.data, /encoded slash/);
    assert.match(r.data, /x-sidecar-flag: DPE/i);
  });

  it('HTTP/2: the same shapes are refused or routed to /admin, and the app gets the normalized path', async () => {
    const client = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const h2get = (p: string): Promise<number> =>
        new Promise((resolve, reject) => {
          const s = client.request({ ':path': p, ':authority': 't' });
          s.on('response', (h) => resolve(Number(h[':status'])));
          s.on('error', reject);
          s.resume();
        });
      for (const shape of SHAPES.filter((s) => !s.includes('#'))) {
        seen.length = 0;
        const status = await h2get(shape);
        assert.ok(status === 400 || status === 403, `h2 ${shape}: ${status}`);
        for (const s of seen) assert.ok(!lenientView(s).startsWith('/admin'), `${shape} reached the app as ${s}`);
      }
      seen.length = 0;
      assert.equal(await h2get('//x/../y;p'), 200);
      assert.deepEqual(seen, ['/y']);
    } finally {
      client.close();
    }
  });

  it('a WebSocket upgrade is normalized before its routing too', async () => {
    const r = await rawRequest(port, 'GET /public/..;/admin HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n', 3000);
    assert.equal(r.status, 403);
    const bad = await rawRequest(port, 'GET /x/..%2Fadmin HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n', 3000);
    assert.equal(bad.status, 400);
  });
});
