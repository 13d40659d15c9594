// HTTP/2 streams the client abandons are finished: a HEADERS burst from raw clients that then vanish, RST_STREAM
// after HEADERS, a rapid-reset flood, sessions nghttp2 ended by itself, and a request that never ends across a reload
// (its snapshot is still released).
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { metricsText } from '../helpers/admin.js';
import { frame, FrameType, getFields, headersFrame, PREFACE, RawH2, rstStreamFrame, settingsFrame } from '../helpers/h2-frames.js';
import { connectInspector, heapCountsByName, inspectorUrl } from '../helpers/inspector.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest, sleep } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

const activeRequests = async (adminPort: number): Promise<number> =>
  Number(/^sidecar_requests_active\{listener="in"\} (\d+)$/m.exec(await metricsText(adminPort))?.[1] ?? NaN);

async function eventually(cond: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await sleep(25);
  }
}

/** An upstream that never answers /hang/* (and notes when the sidecar gives such a request up), answers the rest. */
function hangingUpstream(): Promise<TestUpstream & { closed: Set<string> }> {
  const closed = new Set<string>();
  return startUpstream((req, res) => {
    if (req.url!.startsWith('/hang/')) {
      res.once('close', () => closed.add(req.url!));
      return;
    }
    reply(res, 200, 'ok\n');
  }).then((u) => Object.assign(u, { closed }));
}

describe('HTTP/2: abandoned streams are finished', () => {
  let up: Awaited<ReturnType<typeof hangingUpstream>>;
  let sidecar: RunningSidecar;
  let port: number;

  before(async () => {
    up = await hangingUpstream();
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { name: all, match: { prefix: / }, cluster: app, timeout: 0 }
clusters:
  - name: app
    endpoints: [${up.address}]
`);
    port = sidecar.ports.in!;
  });
  after(async () => {
    await sidecar?.stop();
    await up?.close();
  });

  it('a burst of 10,400 HEADERS from clients that then vanish: no request stays active, every forwarded one is logged and cancelled, normal requests succeed', async () => {
    // Four connections send 2,500 HEADERS each (far past max_concurrent_streams), four send 100 (within it).
    const shapes = [2500, 2500, 2500, 2500, 100, 100, 100, 100];
    const clients = await Promise.all(shapes.map(() => RawH2.open(port)));
    clients.forEach((c, ci) => {
      const frames: Buffer[] = [];
      for (let i = 0; i < shapes[ci]!; i++) frames.push(headersFrame(1 + 2 * i, getFields(`/hang/burst/${ci}/${i}`)));
      c.socket.write(Buffer.concat(frames));
    });
    await sleep(100);
    const normal = Array.from({ length: 10 }, (_, i) =>
      httpRequest(port, { path: `/normal/${i}`, timeoutMs: 8000 }).then(
        (r) => r.status,
        (e: Error) => e.message,
      ),
    );
    await sleep(400);
    for (const c of clients) c.socket.destroy();

    assert.deepEqual(await Promise.all(normal), Array(10).fill(200), 'normal requests during the burst succeed');
    await eventually(async () => (await activeRequests(sidecar.adminPort)) === 0, 'sidecar_requests_active back to 0', 5000);
    const forwarded = up.requests.filter((r) => r.url.startsWith('/hang/burst/'));
    assert.ok(forwarded.length > 0, 'some burst requests reached the upstream');
    assert.ok(forwarded.length <= 4 * 100 + 4 * 100, `at most max_concurrent_streams per connection forwarded, got ${forwarded.length}`);
    await eventually(() => forwarded.every((r) => up.closed.has(r.url)), 'the upstream to see every forwarded burst request given up', 5000);
    await eventually(
      () => {
        const logged = new Set(sidecar.accessLog().map((l) => l.request_id));
        return forwarded.every((r) => logged.has(r.headers['x-request-id']));
      },
      'an access-log line for every forwarded burst request',
      5000,
    );
    for (const l of sidecar.accessLog().filter((x) => String(x.path).startsWith('/hang/burst/'))) {
      assert.equal(l.status, 499, JSON.stringify(l));
      assert.equal(l.response_flag, 'DC', JSON.stringify(l));
    }
    assert.doesNotMatch(sidecar.stderr(), /uncaught exception/);
  });

  it('RST_STREAM after HEADERS cancels the upstream request (CANCEL and INTERNAL_ERROR), logs DC 499, and the session carries on', async () => {
    const c = await RawH2.open(port);
    try {
      await c.write(headersFrame(1, getFields('/hang/rst/cancel')));
      await eventually(() => up.requests.some((r) => r.url === '/hang/rst/cancel'), 'the upstream to receive the request', 5000);
      await c.write(rstStreamFrame(1, 0x8));
      await c.write(headersFrame(3, getFields('/hang/rst/internal')));
      await eventually(() => up.requests.some((r) => r.url === '/hang/rst/internal'), 'the upstream to receive the request', 5000);
      await c.write(rstStreamFrame(3, 0x2));
      await eventually(() => up.closed.has('/hang/rst/cancel') && up.closed.has('/hang/rst/internal'), 'the upstream to see both requests aborted', 5000);
      for (const path of ['/hang/rst/cancel', '/hang/rst/internal']) {
        await eventually(() => sidecar.accessLog().some((l) => l.path === path), `an access-log line for ${path}`, 5000);
        const line = sidecar.accessLog().find((l) => l.path === path)!;
        assert.equal(line.status, 499);
        assert.equal(line.response_flag, 'DC');
      }
      await eventually(async () => (await activeRequests(sidecar.adminPort)) === 0, 'sidecar_requests_active back to 0', 5000);
      // The same connection still serves requests.
      await c.write(headersFrame(5, getFields('/after-rst')));
      await eventually(() => c.answered().has(5), 'a response on stream 5', 5000);
      assert.ok(!c.closed);
    } finally {
      c.socket.destroy();
    }
  });

  it('GOAWAY with an error code from the client ends its in-flight stream: upstream cancelled, logged DC 499, gauge back to 0', async () => {
    const c = await RawH2.open(port);
    try {
      await c.write(headersFrame(1, getFields('/hang/goaway')));
      await eventually(() => up.requests.some((r) => r.url === '/hang/goaway'), 'the upstream to receive the request', 5000);
      const goaway = Buffer.alloc(8);
      goaway.writeUInt32BE(0, 0); // last stream id
      goaway.writeUInt32BE(0x1, 4); // PROTOCOL_ERROR
      await c.write(frame(FrameType.GOAWAY, 0, 0, goaway));
      await eventually(() => up.closed.has('/hang/goaway'), 'the upstream to see the request aborted', 5000);
      await eventually(() => sidecar.accessLog().some((l) => l.path === '/hang/goaway'), 'an access-log line', 5000);
      const line = sidecar.accessLog().find((l) => l.path === '/hang/goaway')!;
      assert.equal(line.status, 499);
      assert.equal(line.response_flag, 'DC');
      await eventually(async () => (await activeRequests(sidecar.adminPort)) === 0, 'sidecar_requests_active back to 0', 5000);
    } finally {
      c.socket.destroy();
    }
  });

  it('a rapid-reset flood gets GOAWAY ENHANCE_YOUR_CALM and its socket closed within seconds, with one log line', async () => {
    const c = await RawH2.open(port);
    const frames: Buffer[] = [];
    for (let i = 0; i < 5000; i++) frames.push(headersFrame(1 + 2 * i, getFields(`/flood/${i}`)), rstStreamFrame(1 + 2 * i));
    const t0 = Date.now();
    c.socket.write(Buffer.concat(frames));
    await eventually(() => c.closed, 'the sidecar to close the flooding connection', 5000);
    const took = Date.now() - t0;
    assert.equal(c.goaway()?.code, 0xb, `GOAWAY ENHANCE_YOUR_CALM, got ${JSON.stringify(c.goaway())} after ${took}ms`);
    assert.ok(!c.frames.some((f) => f.type === FrameType.HEADERS), 'nothing answered');
    // A stream whose RST_STREAM came in a later read than its HEADERS was alive when dispatched; any other was not.
    const forwarded = up.requests.filter((r) => r.url.startsWith('/flood/')).length;
    assert.ok(forwarded < 50, `streams reset before the handler ran are not forwarded, but ${forwarded} of 5000 were`);
    await eventually(async () => (await activeRequests(sidecar.adminPort)) === 0, 'sidecar_requests_active back to 0', 5000);
    const lines = sidecar.stderr().split('\n').filter((l) => l.includes('HTTP/2 session ended') && l.includes('"rapid_reset"'));
    assert.equal(lines.length, 1, `the flood is logged once, got ${lines.length} lines`);
    assert.match(await metricsText(sidecar.adminPort), /^sidecar_http2_sessions_ended_total\{listener="in",reason="rapid_reset"\} 1$/m);
    assert.doesNotMatch(sidecar.stderr(), /uncaught exception/);
  });
});

describe('HTTP/2: sessions nghttp2 ended on its own are freed', () => {
  it('connection errors answered by nghttp2 itself (DATA or WINDOW_UPDATE on stream 0, a malformed SETTINGS) are closed at idle_timeout, and no session stays on the heap', async () => {
    const up = await startUpstream((req, res) => (req.url === '/slow' ? setTimeout(() => reply(res, 200, 'late\n'), 2500) : reply(res, 200, 'ok\n')));
    const sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    limits: { idle_timeout: 1s }
    routes:
      - { match: { prefix: / }, cluster: app }
clusters:
  - { name: app, endpoints: [${up.address}] }
`, { nodeArgs: ['--inspect=127.0.0.1:0'] });
    const url = inspectorUrl(sidecar.stderr());
    assert.ok(url, 'the inspector URL');
    const probe = await connectInspector(url);
    try {
      const port = sidecar.ports.in!;
      // Frames nghttp2 answers with its own GOAWAY and then stops reading: Node emits nothing for them, so neither
      // the client's FIN nor a graceful close ever ends the session.
      const bad = [frame(FrameType.DATA, 0, 0, Buffer.alloc(8)), frame(FrameType.WINDOW_UPDATE, 0, 0, Buffer.alloc(8)), frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(8))];
      await Promise.all(Array.from({ length: 30 }, (_, i) => new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => {});
        s.once('data', () => s.destroy()); // the server's SETTINGS (or GOAWAY): the client is gone
        s.once('close', () => resolve());
        s.on('connect', () => s.end(Buffer.concat([PREFACE, settingsFrame(), headersFrame(1, getFields('/x')), bad[i % bad.length]!])));
      })));
      const active = async (): Promise<number> => Number(/^sidecar_downstream_connections_active\{listener="in"\} (\d+)$/m.exec(await metricsText(sidecar.adminPort))?.[1] ?? NaN);
      await eventually(async () => (await active()) === 0, 'every such connection closed (idle_timeout 1s + the 2s PING wait)', 8000);
      await probe.heapUsedAfterGcMiB(); // a full GC
      assert.equal((await heapCountsByName(url)).get('object:ServerHttp2Session')?.count ?? 0, 0, 'no ServerHttp2Session left on the heap');
      assert.equal((await httpRequest(port, { path: '/alive' })).status, 200, 'the listener still serves');
      // A live client's request that outlasts idle_timeout (no frames meanwhile) still finishes: its PING answer keeps
      // the close graceful.
      const client = http2.connect(`http://127.0.0.1:${port}`);
      client.on('error', () => {});
      const late = await new Promise<string>((resolve, reject) => {
        const st = client.request({ ':path': '/slow' });
        let body = '';
        st.setEncoding('utf8').on('data', (d: string) => (body += d));
        st.on('end', () => resolve(body));
        st.on('error', reject);
      }).finally(() => client.destroy());
      assert.equal(late, 'late\n');
    } finally {
      probe.close();
      await sidecar.stop();
      await up.close();
    }
  });
});

describe('snapshot release: a request that never ends does not pin a retired snapshot', () => {
  it('after a reload moves the cluster, the old health checker stops within drain_timeout although a request still hangs on the old snapshot', async () => {
    let probesA = 0;
    const a = await startUpstream((req, res) => {
      if (req.url === '/healthz') {
        probesA++;
        reply(res, 200, 'hz\n');
      }
      // anything else hangs for ever
    });
    const b = await startUpstream((_req, res) => reply(res, 200, 'b\n'));
    const config = (endpoint: string): string => `
drain_timeout: 1s
listeners:
  - name: in
    port: 0
    routes:
      - { name: all, match: { prefix: / }, cluster: app, timeout: 0 }
clusters:
  - name: app
    endpoints: [${endpoint}]
    health_check: { path: /healthz, interval: 50ms }
`;
    const sidecar = await startSidecar(config(a.address));
    const hung = http.request({ host: '127.0.0.1', port: sidecar.ports.in!, path: '/hang', agent: false });
    hung.on('error', () => {});
    hung.end();
    try {
      await eventually(() => a.requests.some((r) => r.url === '/hang'), 'the hanging request to reach endpoint A', 5000);
      await eventually(() => probesA >= 2, 'endpoint A to be probed', 5000);
      sidecar.writeConfig(config(b.address));
      sidecar.proc.kill('SIGHUP');
      await eventually(() => sidecar.stderr().includes('"config reloaded"'), 'the reload', 5000);
      assert.equal((await httpRequest(sidecar.ports.in!, { path: '/new' })).body, 'b\n', 'new requests go to B');
      // drain_timeout (1 s) after the reload the old snapshot is released, its health checker with it.
      await sleep(1500);
      const settled = probesA;
      await sleep(1000);
      assert.equal(probesA, settled, `endpoint A still probed after drain_timeout: ${probesA - settled} more probes in 1 s`);
      assert.ok(!hung.destroyed, 'the hanging request itself was not cut');
    } finally {
      hung.destroy();
      await sidecar.stop();
      await a.close();
      await b.close();
    }
  });
});
