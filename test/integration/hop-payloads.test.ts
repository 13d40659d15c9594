// routes[].protobuf_bodies and routes[].hop_compression between two real sidecars over h2c, with a TCP relay between
// them counting the hop's bytes: apps send and receive JSON, the hop carries protobuf (and compressed bodies), a JSON
// body that does not fit is answered 400 before it leaves the host, and a schema mismatch falls back to JSON, counted.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { accessLogFor } from '../helpers/strict-net.js';
import { orderRequest, orderFor } from '../helpers/orders.js';

interface Seen { url: string; headers: http.IncomingHttpHeaders; body: string }

function startApp(): Promise<{ server: http.Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts).toString('utf8');
      seen.push({ url: req.url ?? '', headers: req.headers, body });
      if (req.url === '/error') {
        res.writeHead(409, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ error: 'conflict', detail: 'not an Order' }));
      }
      if (req.url === '/precompressed') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'identity-app' });
        return void res.end('{"raw":true}');
      }
      const asked = body === '' ? orderRequest(3) : (JSON.parse(body) as ReturnType<typeof orderRequest>);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(orderFor(asked)));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as net.AddressInfo).port, seen })));
}

/** A TCP relay counting the bytes each way. */
function startRelay(target: number): Promise<{ server: net.Server; port: number; up: () => number; down: () => number }> {
  let up = 0;
  let down = 0;
  const server = net.createServer((d) => {
    const u = net.connect(target, '127.0.0.1');
    d.on('data', (c: Buffer) => (up += c.length));
    u.on('data', (c: Buffer) => (down += c.length));
    d.pipe(u).pipe(d);
    const cut = (): void => void (d.destroy(), u.destroy());
    d.on('error', cut).on('close', cut);
    u.on('error', cut).on('close', cut);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as net.AddressInfo).port, up: () => up, down: () => down })));
}

const PB = (extra = '') => `{ proto: [examples/polyglot/orders.proto], request: shop.v1.OrderRequest, response: shop.v1.Order${extra} }`;

async function pair(app: number, inboundRoute: string, outboundRoute: string) {
  const inbound = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes: [{ name: app, match: { prefix: / }, cluster: app${inboundRoute} }]
clusters:
  - { name: app, endpoints: ["127.0.0.1:${app}"] }
`);
  const relay = await startRelay(inbound.ports.in!);
  const outbound = await startSidecar(`
listeners:
  - name: out
    port: 0
    hop_marker: ignore
    routes: [{ name: mesh, match: { prefix: / }, cluster: far${outboundRoute} }]
clusters:
  - { name: far, peer: sidecar, endpoints: ["127.0.0.1:${relay.port}"] }
`);
  return { inbound, outbound, relay };
}

async function post(port: number, path: string, body: string | undefined, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body }),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

const metric = async (s: RunningSidecar, pattern: RegExp): Promise<number> => {
  const text = await (await fetch(`http://127.0.0.1:${s.adminPort}/metrics`)).text();
  const m = pattern.exec(text);
  return m ? Number(m[1]) : 0;
};

describe('protobuf bodies on the sidecar hop', () => {
  let app: Awaited<ReturnType<typeof startApp>>;
  let p: Awaited<ReturnType<typeof pair>>;
  before(async () => {
    app = await startApp();
    p = await pair(app.port, `, protobuf_bodies: ${PB()}`, `, protobuf_bodies: ${PB()}`);
  });
  after(async () => {
    await p?.outbound.stop();
    p?.relay.server.close();
    await p?.inbound.stop();
    app?.server.close();
  });

  it('apps exchange JSON; after the first answer taught the schema, both directions cross as protobuf, smaller', async () => {
    const body = JSON.stringify(orderRequest(8));
    const first = await post(p.outbound.ports.out!, '/orders', body, { 'x-request-id': 'pb-1' });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get('content-type'), 'application/json');
    assert.deepEqual(JSON.parse(first.text), orderFor(orderRequest(8)));
    const seenFirst = app.seen.at(-1)!;
    assert.equal(seenFirst.body, body, 'the first request crossed as JSON (nothing known of the far end yet)');
    const up0 = p.relay.up();
    const down0 = p.relay.down();
    const second = await post(p.outbound.ports.out!, '/orders', body, { 'x-request-id': 'pb-2' });
    assert.equal(second.status, 200);
    assert.equal(second.text, JSON.stringify(orderFor(orderRequest(8))), 'the client gets exactly the server JSON');
    const seen = app.seen.at(-1)!;
    assert.deepEqual(JSON.parse(seen.body), JSON.parse(body));
    assert.equal(seen.headers['content-type'], 'application/json');
    for (const h of Object.keys(seen.headers)) assert.doesNotMatch(h, /^x-sidecar-(pb|accept)/, `the app saw ${h}`);
    const upBytes = p.relay.up() - up0;
    const downBytes = p.relay.down() - down0;
    assert.ok(upBytes < body.length, `request over the hop ${upBytes} B < JSON ${body.length} B`);
    assert.ok(downBytes < second.text.length, `answer over the hop ${downBytes} B < JSON ${second.text.length} B`);
    assert.ok((await metric(p.outbound, /sidecar_hop_protobuf_bodies_total\{[^}]*side="sending",body="request",outcome="encoded"\} (\d+)/)) >= 1);
    assert.ok((await metric(p.inbound, /sidecar_hop_protobuf_bodies_total\{[^}]*side="receiving",body="request",outcome="decoded"\} (\d+)/)) >= 1);
    assert.ok((await metric(p.inbound, /sidecar_hop_body_bytes_total\{[^}]*encoding="protobuf"\} (\d+)/)) > 0);
    const out = await accessLogFor(p.outbound, '/orders');
    assert.equal(typeof out.hop_payload, 'string');
    const inn = await accessLogFor(p.inbound, '/orders');
    assert.equal(inn.request_id, out.request_id);
  });

  it('a JSON body that does not fit the message is answered 400 naming the field, and never leaves the host', async () => {
    const before = app.seen.length;
    const upBefore = p.relay.up();
    const bad = await post(p.outbound.ports.out!, '/orders', JSON.stringify({ customerId: 'c1', items: [{ sku: 'a', quantity: 'lots' }] }));
    assert.equal(bad.status, 400);
    assert.match(bad.text, /items\[0\]\.quantity/);
    const unknown = await post(p.outbound.ports.out!, '/orders', JSON.stringify({ customerId: 'c1', colour: 'red' }));
    assert.equal(unknown.status, 400);
    assert.match(unknown.text, /colour/);
    assert.equal(app.seen.length, before);
    assert.equal(p.relay.up(), upBefore, 'nothing crossed the hop');
  });

  it('an answer that is not the message (an error body) and an app-encoded one cross as JSON, untouched', async () => {
    const err = await post(p.outbound.ports.out!, '/error', JSON.stringify(orderRequest(1)));
    assert.equal(err.status, 409);
    assert.deepEqual(JSON.parse(err.text), { error: 'conflict', detail: 'not an Order' });
    const raw = await post(p.outbound.ports.out!, '/precompressed', undefined);
    assert.equal(raw.text, '{"raw":true}');
    assert.equal(raw.headers.get('content-encoding'), 'identity-app');
  });
});

describe('protobuf bodies: schema mismatch and compression', () => {
  let app: Awaited<ReturnType<typeof startApp>>;
  const running: Array<Awaited<ReturnType<typeof pair>>> = [];
  before(async () => {
    app = await startApp();
  });
  after(async () => {
    for (const p of running) {
      await p.outbound.stop();
      p.relay.server.close();
      await p.inbound.stop();
    }
    app?.server.close();
  });

  it('a far end with another schema: the bodies cross as JSON, the mismatch is counted and logged', async () => {
    // The far end declares only the response type: another fingerprint.
    const p = await pair(app.port, ', protobuf_bodies: { proto: [examples/polyglot/orders.proto], response: shop.v1.Order }', `, protobuf_bodies: ${PB()}`);
    running.push(p);
    const body = JSON.stringify(orderRequest(2));
    for (let i = 0; i < 2; i++) {
      const r = await post(p.outbound.ports.out!, '/orders', body);
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.text), orderFor(orderRequest(2)));
      assert.equal(app.seen.at(-1)!.body, body, 'the app got the JSON as sent');
    }
    assert.ok((await metric(p.outbound, /sidecar_hop_schema_mismatches_total\{listener="out",route="mesh"\} (\d+)/)) >= 2);
    const line = await accessLogFor(p.outbound, '/orders');
    assert.match(String(line.hop_payload), /schema-mismatch/);
  });

  it('hop compression: negotiated, the answer and (once learnt) the request cross compressed, apps see plain JSON', async () => {
    const comp = ', hop_compression: { algorithms: [br, gzip], min_bytes: 256 }';
    const p = await pair(app.port, comp, comp);
    running.push(p);
    const body = JSON.stringify(orderRequest(40));
    await post(p.outbound.ports.out!, '/orders', body);
    const up0 = p.relay.up();
    const down0 = p.relay.down();
    const r = await post(p.outbound.ports.out!, '/orders', body);
    assert.equal(r.status, 200);
    assert.equal(r.text, JSON.stringify(orderFor(orderRequest(40))));
    assert.equal(r.headers.get('content-encoding'), null);
    const seen = app.seen.at(-1)!;
    assert.equal(seen.body, body);
    assert.equal(seen.headers['x-sidecar-encoding'], undefined);
    assert.ok(p.relay.up() - up0 < body.length / 2, `request ${p.relay.up() - up0} B on the hop for ${body.length} B`);
    assert.ok(p.relay.down() - down0 < r.text.length / 2, `answer ${p.relay.down() - down0} B on the hop for ${r.text.length} B`);
    assert.ok((await metric(p.inbound, /sidecar_hop_compression_bytes_total\{[^}]*algorithm="br",direction="compress",stage="out"\} (\d+)/)) > 0);
  });
});

describe('protobuf_bodies in sidecar validate', () => {
  it('a message type the .proto does not define fails validate with the YAML path and the file', async () => {
    const { execFile } = await import('node:child_process');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const { BIN, ROOT } = await import('../helpers/sidecar.js');
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'pb-validate-')), 'sidecar.yaml');
    writeFileSync(file, `listeners:
  - name: out
    port: 0
    routes:
      - { name: r, match: { prefix: / }, cluster: c, protobuf_bodies: { proto: [examples/polyglot/orders.proto], request: shop.v1.Nope } }
clusters:
  - { name: c, peer: sidecar, endpoints: ["127.0.0.1:1"] }
`);
    const out = await new Promise<{ code: number; text: string }>((resolve) =>
      execFile(process.execPath, [BIN, 'validate', '-c', file], { cwd: ROOT, encoding: 'utf8' }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, text: stdout + stderr })),
    );
    assert.equal(out.code, 2, out.text);
    assert.match(out.text, /routes\[0\]\.protobuf_bodies\.proto: .*orders\.proto:1: request message type "shop\.v1\.Nope" is not defined/);
  });
});
