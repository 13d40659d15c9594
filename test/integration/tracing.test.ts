// Tracing across two real sidecars (app -> A -> B -> upstream) into a real OTLP/HTTP receiver that decodes the
// export requests with OpenTelemetry's protocol definitions: parent/child links across both hops, trace ids carried
// from traceparent and B3, retries as sibling client spans, head and tail sampling, and a collector that is down or
// hangs costing spans (counted), never requests.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { metricsText } from '../helpers/admin.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { BIN, startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { accessLogFor, httpRequest, sleep } from '../helpers/strict-net.js';
import { freePort, reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const P = '00f067aa0ba902b7';

async function spansWhere(rx: OtlpReceiver, pred: (s: ReceivedSpan) => boolean, n: number, timeoutMs = 5000): Promise<ReceivedSpan[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const found = rx.spans.filter(pred);
    if (found.length >= n) return found;
    if (Date.now() > end) throw new Error(`expected ${n} spans, have ${found.length}: ${JSON.stringify(rx.spans.map((s) => [s.service, s.name, s.attributes['url.path']]))}`);
    await sleep(25);
  }
}

const byPath = (p: string) => (s: ReceivedSpan) => s.attributes['url.path'] === p;
const one = (spans: ReceivedSpan[], service: string, kind: 'SERVER' | 'CLIENT'): ReceivedSpan[] => spans.filter((s) => s.service === service && s.kind === `SPAN_KIND_${kind}`);

describe('tracing (OTLP/HTTP, two chained sidecars)', () => {
  let rx: OtlpReceiver;
  let hanging: TestUpstream;
  let up: TestUpstream;
  let slowUp: TestUpstream;
  let a: RunningSidecar;
  let b: RunningSidecar;
  let d: RunningSidecar;
  const flakySeen = new Set<string>();

  before(async () => {
    rx = await startOtlpReceiver();
    slowUp = await startUpstream((_req, res) => setTimeout(() => reply(res, 200, 'late\n'), 400));
    up = await startUpstream((req, res) => {
      const url = req.url!;
      if (url.startsWith('/flaky') && !flakySeen.has(url)) {
        flakySeen.add(url);
        reply(res, 503, 'try again\n');
      } else if (url.startsWith('/fail')) reply(res, 500, 'broken\n');
      else if (url.startsWith('/slow')) setTimeout(() => reply(res, 200, 'slow\n'), 300);
      else reply(res, 200, JSON.stringify({ traceparent: req.headers.traceparent ?? null, b3: req.headers.b3 ?? null }));
    });
    const tracing = (extra: string) => `{ service_name: sidecar-b, otlp: { endpoint: "${rx.url}" }, flush_interval: 50ms, propagation: [w3c, b3]${extra} }`;
    b = await startSidecar(`
listeners:
  - name: inbound
    port: 0
    filters:
      - { type: tracing, config: ${tracing(', sampling_ratio: 1')} }
    routes:
      - match: { prefix: /flaky }
        cluster: app
        retry: { retry_on: [5xx], max_retries: 1, backoff: { base_interval: 1ms, max_interval: 2ms } }
      - match: { prefix: /hedge }
        cluster: pair
        hedge: { after: 50ms }
      - match: { prefix: / }
        cluster: app
  - name: tail
    port: 0
    filters:
      - { type: tracing, config: ${tracing(', sampling_ratio: 0, always_sample: { errors: true, slower_than: 150ms }')} }
    routes:
      - match: { prefix: / }
        cluster: app
clusters:
  - { name: app, endpoints: ["${up.address}"] }
  - { name: pair, endpoints: ["${slowUp.address}", "${up.address}"] }
`);
    a = await startSidecar(`
listeners:
  - name: outbound
    port: 0
    filters:
      - { type: tracing, config: { service_name: sidecar-a, otlp: { endpoint: "${rx.url}" }, flush_interval: 50ms } }
    routes:
      - match: { prefix: / }
        cluster: sidecar_b
clusters:
  - { name: sidecar_b, endpoints: ["127.0.0.1:${b.ports.inbound}"] }
`);
    // A collector that refuses connections, and one that accepts and never answers.
    const refused = await freePort();
    hanging = await startUpstream(() => {});
    d = await startSidecar(`
listeners:
  - name: down
    port: 0
    filters:
      - { type: tracing, config: { otlp: { endpoint: "http://127.0.0.1:${refused}/v1/traces", timeout: 200ms }, flush_interval: 20ms, max_batch: 1 } }
    routes:
      - match: { prefix: / }
        cluster: app
  - name: slow
    port: 0
    filters:
      - { type: tracing, config: { otlp: { endpoint: "http://127.0.0.1:${hanging.port}/v1/traces", timeout: 200ms }, flush_interval: 20ms, max_batch: 1 } }
    routes:
      - match: { prefix: / }
        cluster: app
clusters:
  - { name: app, endpoints: ["${up.address}"] }
`);
  });

  after(async () => {
    for (const s of [a, b, d]) await s?.stop();
    await up?.close();
    await slowUp?.close();
    await rx?.close();
    await hanging?.close();
  });

  it("carries an incoming traceparent across both sidecars: A's client span is the parent of B's server span", async () => {
    const res = await httpRequest(a.ports.outbound!, { path: '/hello', headers: { traceparent: `00-${T}-${P}-01`, tracestate: 'vendor=x' } });
    assert.equal(res.status, 200);
    const spans = await spansWhere(rx, (s) => s.traceId === T && byPath('/hello')(s), 4);
    const [aServer] = one(spans, 'sidecar-a', 'SERVER');
    const [aClient] = one(spans, 'sidecar-a', 'CLIENT');
    const [bServer] = one(spans, 'sidecar-b', 'SERVER');
    const [bClient] = one(spans, 'sidecar-b', 'CLIENT');
    assert.ok(aServer && aClient && bServer && bClient, spans.map((s) => `${s.service} ${s.kind}`).join());
    assert.equal(aServer.parentSpanId, P, "A's server span is a child of the app's span");
    assert.equal(aClient.parentSpanId, aServer.spanId);
    assert.equal(bServer.parentSpanId, aClient.spanId, "B's server span is a child of A's client span");
    assert.equal(bClient.parentSpanId, bServer.spanId);
    // The upstream was told B's client span.
    const seen = JSON.parse(res.body) as { traceparent: string; b3: string };
    assert.equal(seen.traceparent, `00-${T}-${bClient.spanId}-01`);
    assert.equal(seen.b3, `${T}-${bClient.spanId}-1`, 'B emits B3 as configured');
    // Semantic-convention attributes and the sidecar's own.
    assert.equal(aServer.attributes['http.request.method'], 'GET');
    assert.equal(aServer.attributes['http.response.status_code'], 200);
    assert.equal(aServer.attributes['network.peer.address'], '127.0.0.1');
    assert.equal(aServer.attributes['sidecar.route'], 'route_0');
    assert.equal(aServer.attributes['sidecar.cluster'], 'sidecar_b');
    assert.equal(aClient.attributes['server.address'], '127.0.0.1');
    assert.equal(aClient.attributes['server.port'], b.ports.inbound);
    assert.equal(aClient.attributes['sidecar.attempt'], 1);
    assert.equal(bClient.attributes['server.port'], up.port);
    assert.equal(bServer.status, 'STATUS_CODE_UNSET');
    assert.ok(aServer.startNs <= aClient.startNs && aClient.endNs <= aServer.endNs + 1_000_000n, 'the client span lies within the server span');
    assert.ok(rx.requests.every((ct) => ct === 'application/x-protobuf'), rx.requests.join());
    // The trace and span ids are in both access log lines.
    const la = await accessLogFor(a, '/hello');
    const lb = await accessLogFor(b, '/hello');
    assert.equal(la.trace_id, T);
    assert.equal(la.span_id, aServer.spanId);
    assert.equal(lb.trace_id, T);
    assert.equal(lb.span_id, bServer.spanId);
  });

  it('starts a trace when the request has none, and when its traceparent is invalid', async () => {
    await httpRequest(a.ports.outbound!, { path: '/fresh' });
    await httpRequest(a.ports.outbound!, { path: '/invalid', headers: { traceparent: `00-${'0'.repeat(32)}-${P}-01` } });
    for (const p of ['/fresh', '/invalid']) {
      const spans = await spansWhere(rx, byPath(p), 4);
      const [aServer] = one(spans, 'sidecar-a', 'SERVER');
      assert.equal(aServer!.parentSpanId, '', `${p}: A's server span is a root`);
      assert.notEqual(aServer!.traceId, '0'.repeat(32));
      assert.ok(spans.every((s) => s.traceId === aServer!.traceId), `${p}: one trace across both sidecars`);
    }
  });

  it('accepts B3, single and multi-header', async () => {
    const t2 = 'aaaabbbbccccddddeeeeffff00001111';
    const t3 = '0000000000000000a3ce929d0e0e4736';
    await httpRequest(a.ports.outbound!, { path: '/b3', headers: { b3: `${t2}-${P}-1` } });
    await httpRequest(a.ports.outbound!, { path: '/b3multi', headers: { 'x-b3-traceid': 'a3ce929d0e0e4736', 'x-b3-spanid': P, 'x-b3-sampled': '1' } });
    for (const [p, t] of [['/b3', t2], ['/b3multi', t3]] as const) {
      const spans = await spansWhere(rx, byPath(p), 4);
      const [aServer] = one(spans, 'sidecar-a', 'SERVER');
      assert.equal(aServer!.traceId, t, p);
      assert.equal(aServer!.parentSpanId, P, p);
    }
  });

  it('a retried attempt is a sibling client span, numbered and marked as a retry', async () => {
    const res = await httpRequest(a.ports.outbound!, { path: '/flaky/1' });
    assert.equal(res.status, 200);
    const spans = await spansWhere(rx, byPath('/flaky/1'), 5);
    const [bServer] = one(spans, 'sidecar-b', 'SERVER');
    const clients = one(spans, 'sidecar-b', 'CLIENT').sort((x, y) => Number(x.attributes['sidecar.attempt']) - Number(y.attributes['sidecar.attempt']));
    assert.equal(clients.length, 2);
    assert.ok(clients.every((c) => c.parentSpanId === bServer!.spanId), 'both attempts are children of the one server span');
    assert.notEqual(clients[0]!.spanId, clients[1]!.spanId);
    assert.deepEqual(clients.map((c) => c.attributes['sidecar.attempt']), [1, 2]);
    assert.deepEqual(clients.map((c) => c.attributes['sidecar.retry']), [false, true]);
    assert.deepEqual(clients.map((c) => c.attributes['http.response.status_code']), [503, 200]);
    assert.deepEqual(clients.map((c) => c.status), ['STATUS_CODE_ERROR', 'STATUS_CODE_UNSET']);
    assert.equal(bServer!.attributes['sidecar.attempt'], 2);
    assert.equal(bServer!.attributes['http.response.status_code'], 200);
  });

  it('a hedge is its own client span, marked, beside the attempt it raced', async () => {
    // Round robin over a slow and a fast endpoint: whichever request goes to the slow one first is hedged.
    for (const p of ['/hedge/1', '/hedge/2']) assert.equal((await httpRequest(a.ports.outbound!, { path: p })).status, 200);
    const hedged = await spansWhere(rx, (s) => s.attributes['sidecar.hedge'] === true, 1);
    const h = hedged[0]!;
    const siblings = rx.spans.filter((s) => s.parentSpanId === h.parentSpanId && s.kind === 'SPAN_KIND_CLIENT');
    const first = await spansWhere(rx, (s) => s.parentSpanId === h.parentSpanId && s.kind === 'SPAN_KIND_CLIENT' && s.attributes['sidecar.hedge'] === false, 1);
    assert.ok(siblings.length >= 1);
    assert.equal(first[0]!.attributes['sidecar.attempt'], 1);
    assert.equal(h.attributes['sidecar.attempt'], 2);
    assert.equal(h.attributes['sidecar.retry'], false);
    assert.equal(h.attributes['server.port'], up.port, 'the hedge went to the other (fast) endpoint');
    assert.equal(first[0]!.attributes['server.port'], slowUp.port);
  });

  it('sampling ratio 0 drops a normal request but keeps a failed one and a slow one (tail keep)', async () => {
    const port = b.ports.tail!;
    const ok = await httpRequest(port, { path: '/ratio0/ok' });
    assert.equal(ok.status, 200);
    assert.match(JSON.parse(ok.body).traceparent as string, /-00$/, 'the upstream is told the request is not sampled');
    assert.equal((await httpRequest(port, { path: '/fail/ratio0' })).status, 500);
    const failed = await spansWhere(rx, byPath('/fail/ratio0'), 2);
    assert.equal(one(failed, 'sidecar-b', 'SERVER')[0]!.status, 'STATUS_CODE_ERROR');
    assert.equal(one(failed, 'sidecar-b', 'SERVER')[0]!.attributes['error.type'], '500');
    assert.equal((await httpRequest(port, { path: '/slow/ratio0' })).status, 200);
    const slow = await spansWhere(rx, byPath('/slow/ratio0'), 2);
    assert.equal(one(slow, 'sidecar-b', 'SERVER')[0]!.status, 'STATUS_CODE_UNSET');
    // One exporter, in order: the fast success ended first and would have arrived by now.
    assert.equal(rx.spans.filter(byPath('/ratio0/ok')).length, 0);
    // Not sampled, but the trace id is still in the access log.
    assert.match(String((await accessLogFor(b, '/ratio0/ok')).trace_id), /^[0-9a-f]{32}$/);
  });

  it('a collector that is down or hangs: requests still succeed, and the spans are counted as dropped', async () => {
    for (let i = 0; i < 5; i++) {
      assert.equal((await httpRequest(d.ports.down!, { path: `/down/${i}` })).status, 200);
      assert.equal((await httpRequest(d.ports.slow!, { path: `/hang/${i}` })).status, 200);
    }
    const dropped = async (reason: string): Promise<number> => {
      const m = await metricsText(d.adminPort);
      return Number(new RegExp(`sidecar_tracing_spans_dropped_total\\{reason="${reason}"\\} (\\d+)`).exec(m)?.[1] ?? 0);
    };
    const end = Date.now() + 8000;
    while ((await dropped('unreachable')) < 5 && Date.now() < end) await sleep(50);
    assert.ok((await dropped('unreachable')) >= 5, await metricsText(d.adminPort));
    while ((await dropped('timeout')) < 1 && Date.now() < end) await sleep(50);
    assert.ok((await dropped('timeout')) >= 1, 'an export that hangs is given up after otlp.timeout');
    assert.doesNotMatch(await metricsText(d.adminPort), /sidecar_tracing_spans_exported_total [1-9]/);
  });
});

function certs(...args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, 'certs', ...args], { encoding: 'utf8', timeout: 30_000 }, (err, _stdout, stderr) =>
      err ? reject(new Error(`sidecar certs ${args.join(' ')}: ${stderr}`)) : resolve(),
    );
  });
}

describe('tracing between mTLS sidecars', () => {
  const WEB = 'spiffe://example.org/ns/default/sa/web';
  const API = 'spiffe://example.org/ns/default/sa/api';
  let rx: OtlpReceiver;
  let app: TestUpstream;
  let inbound: RunningSidecar;
  let outbound: RunningSidecar;

  before(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sidecar-trace-mtls-'));
    const d = (name: string): string => path.join(dir, name);
    await certs('init-ca', '--trust-domain', 'example.org', '--out', d('ca'));
    await Promise.all([
      certs('issue', '--ca', d('ca'), '--identity', WEB, '--out', d('web')),
      certs('issue', '--ca', d('ca'), '--identity', API, '--out', d('api'), '--dns', 'localhost', '--ip', '127.0.0.1'),
    ]);
    rx = await startOtlpReceiver();
    app = await startUpstream();
    const tracing = (name: string) => `{ type: tracing, config: { service_name: ${name}, otlp: { endpoint: "${rx.url}" }, flush_interval: 50ms } }`;
    inbound = await startSidecar(`
listeners:
  - name: in
    port: 0
    tls: { cert: ${d('api')}/cert.pem, key: ${d('api')}/key.pem, client_ca: ${d('api')}/ca.pem, require_client_cert: true }
    filters: [${tracing('api-sidecar')}]
    routes: [{ name: app, match: { prefix: / }, cluster: app }]
clusters:
  - { name: app, endpoints: ["${app.address}"] }
`);
    outbound = await startSidecar(`
listeners:
  - name: out
    port: 0
    filters: [${tracing('web-sidecar')}]
    routes: [{ name: api, match: { prefix: / }, cluster: api }]
clusters:
  - name: api
    endpoints: ["127.0.0.1:${inbound.ports.in}"]
    tls: { ca: ${d('web')}/ca.pem, cert: ${d('web')}/cert.pem, key: ${d('web')}/key.pem, expected_identities: ["${API}"] }
`);
  });

  after(async () => {
    await outbound?.stop();
    await inbound?.stop();
    await app?.close();
    await rx?.close();
  });

  it("names the verified peer on the server span and the upstream's identity on the client span", async () => {
    assert.equal((await httpRequest(outbound.ports.out!, { path: '/orders/7' })).status, 200);
    const spans = await spansWhere(rx, byPath('/orders/7'), 4);
    const [server] = one(spans, 'api-sidecar', 'SERVER');
    const [client] = one(spans, 'web-sidecar', 'CLIENT');
    assert.equal(server!.attributes['sidecar.peer.identity'], WEB);
    assert.equal(server!.attributes['url.scheme'], 'https');
    assert.equal(server!.parentSpanId, client!.spanId, 'the link survives the TLS hop');
    assert.equal(client!.attributes['sidecar.upstream.identity'], API);
  });
});

describe('tracing at shutdown', () => {
  it('spans still queued when the sidecar stops are sent before it exits', async () => {
    const rx = await startOtlpReceiver();
    const app = await startUpstream();
    const s = await startSidecar(`
listeners:
  - name: in
    port: 0
    filters: [{ type: tracing, config: { service_name: stopping, otlp: { endpoint: "${rx.url}" }, flush_interval: 1h } }]
    routes: [{ match: { prefix: / }, cluster: app }]
clusters:
  - { name: app, endpoints: ["${app.address}"] }
`);
    try {
      assert.equal((await httpRequest(s.ports.in!, { path: '/last' })).status, 200);
      await sleep(100);
      assert.equal(rx.spans.length, 0, 'nothing is sent before flush_interval');
      assert.equal(await s.stop(), 0);
      assert.deepEqual(rx.spans.map((x) => x.kind).sort(), ['SPAN_KIND_CLIENT', 'SPAN_KIND_SERVER']);
    } finally {
      await s.stop();
      await app.close();
      await rx.close();
    }
  });
});
