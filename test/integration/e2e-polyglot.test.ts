// The polyglot scenario with real programs: a Java HttpClient (plain HTTP/1.1, JSON) → its sidecar → HTTP/2 with
// mutual TLS and protobuf bodies (routes[].protobuf_bodies on both sides) → the far sidecar → a Node.js JSON server.
// A TCP relay between the sidecars counts the hop's bytes; the metrics say protobuf crossed; both access logs share
// the request id and name the verified identities.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CertFactory } from '../helpers/certs.js';
import { orderFor, orderRequest, type OrderRequestJson } from '../helpers/orders.js';
import { ROOT, startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { accessLogFor } from '../helpers/strict-net.js';
import { requireCommand } from '../helpers/system.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';
const API = 'spiffe://example.org/ns/default/sa/api';
const CLIENT = path.join(ROOT, 'test/fixtures/java/PolyglotClient.java');
const PROTO = path.join(ROOT, 'examples/polyglot/orders.proto');
const REQUESTS = 3;
const JAVA_TIMEOUT_MS = 60_000;

interface Answer { status: number; contentType: string; body: string }

function startApp(): Promise<{ server: http.Server; port: number; seen: Array<{ headers: http.IncomingHttpHeaders; body: string }> }> {
  const seen: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts).toString('utf8');
      seen.push({ headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(orderFor(JSON.parse(body) as OrderRequestJson)));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as net.AddressInfo).port, seen })));
}

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

function runJava(url: string, orderFile: string): Promise<Answer[]> {
  return new Promise((resolve, reject) => {
    const args = ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', CLIENT, url, orderFile, String(REQUESTS)];
    execFile('java', args, { encoding: 'utf8', timeout: JAVA_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`java PolyglotClient failed: ${err.message}\n${stderr}`));
      try {
        resolve(stdout.trim().split('\n').map((l) => JSON.parse(l) as Answer));
      } catch {
        reject(new Error(`java PolyglotClient printed no JSON lines:\n${stdout}\n${stderr}`));
      }
    });
  });
}

const metricsOf = async (s: RunningSidecar): Promise<string> => (await fetch(`http://127.0.0.1:${s.adminPort}/metrics`)).text();
const value = (text: string, re: RegExp): number => Number(re.exec(text)?.[1] ?? 0);

describe('polyglot end to end: Java JSON client → sidecar → h2 + mTLS + protobuf → sidecar → Node.js JSON server', () => {
  const order = orderRequest(12);
  const orderText = JSON.stringify(order);
  let app: Awaited<ReturnType<typeof startApp>>;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  let inbound: RunningSidecar;
  let outbound: RunningSidecar;
  let answers: Answer[];

  before(async () => {
    requireCommand('java', 'default-jdk-headless');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'polyglot-'));
    const orderFile = path.join(dir, 'order.json');
    writeFileSync(orderFile, orderText);
    const certs = new CertFactory();
    const ca = await certs.ca('mesh-ca', 'example.org');
    const web = await certs.leaf(ca, { identity: WEB, name: 'web' });
    const api = await certs.leaf(ca, { identity: API, name: 'api' });
    app = await startApp();
    const pb = `{ proto: ["${PROTO}"], request: shop.v1.OrderRequest, response: shop.v1.Order }`;
    inbound = await startSidecar(`
listeners:
  - name: in
    port: 0
    tls: { cert: ${api.certFile}, key: ${api.keyFile}, client_ca: ${ca.certFile}, require_client_cert: true, allowed_identities: ["${WEB}"] }
    routes: [{ name: orders, match: { prefix: /orders }, cluster: app, protobuf_bodies: ${pb} }]
clusters:
  - { name: app, endpoints: ["127.0.0.1:${app.port}"] }
`);
    relay = await startRelay(inbound.ports.in!);
    outbound = await startSidecar(`
listeners:
  - name: out
    port: 0
    hop_marker: ignore
    routes: [{ name: orders, match: { prefix: /orders }, cluster: api, protobuf_bodies: ${pb} }]
clusters:
  - name: api
    peer: sidecar
    endpoints: ["127.0.0.1:${relay.port}"]
    tls: { ca: ${ca.certFile}, cert: ${web.certFile}, key: ${web.keyFile}, expected_identities: ["${API}"] }
`);
    answers = await runJava(`http://127.0.0.1:${outbound.ports.out}/orders`, orderFile);
  }, { timeout: JAVA_TIMEOUT_MS + 30_000 });

  after(async () => {
    await outbound?.stop();
    relay?.server.close();
    await inbound?.stop();
    app?.server.close();
  });

  it('the Java client gets exactly the server JSON, every time; the server got exactly the client JSON', () => {
    assert.equal(answers.length, REQUESTS);
    const expected = JSON.stringify(orderFor(order));
    for (const a of answers) {
      assert.equal(a.status, 200, a.body);
      assert.equal(a.contentType, 'application/json');
      assert.equal(a.body, expected);
    }
    assert.equal(app.seen.length, REQUESTS);
    for (const s of app.seen) {
      assert.deepEqual(JSON.parse(s.body), order);
      assert.equal(s.headers['content-type'], 'application/json');
      assert.ok(!Object.keys(s.headers).some((h) => /^x-sidecar-(hop|pb|accept|encoding)/.test(h)), `no hop payload header reached the app: ${Object.keys(s.headers).join(', ')}`);
    }
  });

  it('the hop carried protobuf both ways (metrics on both sides), fewer bytes than the JSON', async () => {
    const out = await metricsOf(outbound);
    const inn = await metricsOf(inbound);
    // The first request taught the client sidecar the schema (its answer already came back as protobuf).
    assert.equal(value(out, /sidecar_hop_protobuf_bodies_total\{listener="out",route="orders",side="sending",body="request",outcome="encoded"\} (\d+)/), REQUESTS - 1);
    assert.equal(value(out, /sidecar_hop_protobuf_bodies_total\{listener="out",route="orders",side="sending",body="response",outcome="decoded"\} (\d+)/), REQUESTS);
    assert.equal(value(inn, /sidecar_hop_protobuf_bodies_total\{listener="in",route="orders",side="receiving",body="request",outcome="decoded"\} (\d+)/), REQUESTS - 1);
    assert.equal(value(inn, /sidecar_hop_protobuf_bodies_total\{listener="in",route="orders",side="receiving",body="response",outcome="encoded"\} (\d+)/), REQUESTS);
    const json = value(inn, /sidecar_hop_body_bytes_total\{listener="in",route="orders",encoding="json"\} (\d+)/);
    const proto = value(inn, /sidecar_hop_body_bytes_total\{listener="in",route="orders",encoding="protobuf"\} (\d+)/);
    assert.ok(proto > 0 && proto < json * 0.8, `protobuf ${proto} B vs JSON ${json} B`);
    assert.equal(value(out, /sidecar_hop_schema_mismatches_total\{listener="out",route="orders"\} (\d+)/), 0);
    // The relay saw TLS records carrying HTTP/2: the answers' bytes are below what the JSON answers alone would be.
    const jsonAnswers = answers.reduce((s, a) => s + a.body.length, 0);
    assert.ok(relay.down() < jsonAnswers, `bytes from the far sidecar ${relay.down()} < JSON answers ${jsonAnswers}`);
  });

  it('mutually authenticated; both access logs share the request id and show the peer identities', async () => {
    const o = await accessLogFor(outbound, '/orders');
    const i = await accessLogFor(inbound, '/orders');
    assert.match(String(o.request_id), /^polyglot-\d$/);
    assert.equal(i.request_id, o.request_id);
    assert.equal(o.protocol, 'HTTP/1.1');
    assert.equal(i.protocol, 'HTTP/2');
    assert.equal(i.peer_identity, WEB);
    assert.equal(o.upstream_identity, API);
    assert.match(String(i.hop_payload), /pb:res/);
    assert.match(String(o.hop_payload), /pb:res/);
    const inn = await metricsOf(inbound);
    assert.match(inn, /sidecar_downstream_transport_connections_total\{listener="in",transport="mtls"\} [1-9]/);
  });
});
