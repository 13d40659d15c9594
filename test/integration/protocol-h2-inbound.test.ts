// The HTTP/2 listener protects itself and drains cleanly: GOAWAY on drain (in-flight streams finish, new ones are
// refused), the advertised and enforced concurrent-stream limit, header lists over the limit never forwarded, and a
// rapid-reset client cut off while others are served; the GOAWAY and reset metrics count what happened.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { metricsText } from '../helpers/admin.js';
import { FrameType, RawH2, getFields, headersFrame, rstStreamFrame } from '../helpers/h2-frames.js';
import { connectH2, h2Request, waitUntil } from '../helpers/proto-http.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

describe('HTTP/2 listener limits', () => {
  let sidecar: RunningSidecar;
  let upstream: TestUpstream;
  const held: Array<() => void> = [];

  before(async () => {
    upstream = await startUpstream((req, res) => {
      if (req.url?.startsWith('/hold')) {
        held.push(() => res.end('held'));
        return;
      }
      res.end('ok');
    });
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    limits: { max_concurrent_streams: 3 }
    routes:
      - { match: { prefix: / }, cluster: app }
clusters:
  - { name: app, endpoints: ["${upstream.address}"] }
`);
  });

  after(async () => {
    for (const h of held.splice(0)) h();
    await sidecar?.stop();
    await upstream?.close();
  });

  it('advertises limits.max_concurrent_streams and refuses streams past it with REFUSED_STREAM', { timeout: 20_000 }, async () => {
    const session = await connectH2(sidecar.ports.in!);
    try {
      await waitUntil(() => session.remoteSettings.maxConcurrentStreams === 3, 3000, 'the SETTINGS');
    } finally {
      session.destroy();
    }
    const raw = await RawH2.open(sidecar.ports.in!);
    try {
      const before = upstream.requests.length;
      for (let id = 1; id <= 9; id += 2) await raw.write(headersFrame(id, getFields(`/hold/${id}`)));
      await waitUntil(() => raw.frames.filter((f) => f.type === FrameType.RST_STREAM).length >= 2, 5000, 'two RST_STREAM');
      const resets = raw.frames.filter((f) => f.type === FrameType.RST_STREAM);
      assert.deepEqual(resets.map((f) => f.streamId).sort(), [7, 9]);
      for (const f of resets) assert.equal(f.payload.readUInt32BE(0), NGHTTP2_REFUSED_STREAM);
      await waitUntil(() => upstream.requests.length - before === 3, 5000, 'three streams upstream');
      for (const h of held.splice(0)) h();
      await waitUntil(() => raw.answered().size === 3, 5000, 'the three answers');
    } finally {
      raw.socket.destroy();
    }
  });

  it('a header block over the limit is refused and never forwarded; the listener keeps serving', { timeout: 20_000 }, async () => {
    const before = upstream.requests.length;
    const session = await connectH2(sidecar.ports.in!);
    let outcome: string;
    try {
      const r = await h2Request(session, { ':method': 'GET', ':path': '/huge', 'x-a': 'v'.repeat(40_000), 'x-b': 'v'.repeat(40_000) }, undefined, { timeoutMs: 5000 });
      outcome = `status ${r.status}`;
      assert.equal(r.status, 431);
    } catch (err) {
      outcome = `error ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    } finally {
      session.destroy();
    }
    assert.ok(/status 431|ERR_HTTP2_STREAM_ERROR|ERR_HTTP2_SESSION_ERROR|ERR_HTTP2_INVALID_SESSION|ERR_HTTP2_GOAWAY_SESSION/.test(outcome), outcome);
    assert.equal(upstream.requests.length, before, 'nothing reached the upstream');
    const next = await connectH2(sidecar.ports.in!);
    try {
      const r = await h2Request(next, { ':method': 'GET', ':path': '/after' });
      assert.equal(r.status, 200);
    } finally {
      next.destroy();
    }
  });

  it('a rapid-reset client gets GOAWAY ENHANCE_YOUR_CALM while another client is served; both counted', { timeout: 30_000 }, async () => {
    const raw = await RawH2.open(sidecar.ports.in!);
    const other = await connectH2(sidecar.ports.in!);
    try {
      // Open and reset streams as fast as possible (CVE-2023-44487), in batches under the stream limit.
      for (let id = 1; id < 2 * 1200 && !raw.closed && raw.goaway() === undefined; id += 2) {
        await raw.write(Buffer.concat([headersFrame(id, getFields(`/reset/${id}`)), rstStreamFrame(id)]));
      }
      await waitUntil(() => raw.goaway() !== undefined, 10_000, 'GOAWAY');
      assert.equal(raw.goaway()!.code, NGHTTP2_ENHANCE_YOUR_CALM);
      const r = await h2Request(other, { ':method': 'GET', ':path': '/other' });
      assert.equal(r.status, 200);
      const metrics = await metricsText(sidecar.adminPort);
      assert.match(metrics, /sidecar_h2_goaways_total\{side="downstream",direction="sent",code="ENHANCE_YOUR_CALM"\} [1-9]/);
      assert.match(metrics, /sidecar_h2_resets_total\{side="downstream",direction="received",code="CANCEL"\} [1-9]/);
    } finally {
      raw.socket.destroy();
      other.destroy();
    }
  });
});

describe('HTTP/2 listener drain', () => {
  it('on /drain: GOAWAY, the in-flight stream finishes, a new stream on that session is refused', { timeout: 30_000 }, async () => {
    let release: (() => void) | undefined;
    const upstream = await startUpstream((req, res) => {
      if (req.url === '/slow') release = () => res.end('finished');
      else res.end('ok');
    });
    const sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { match: { prefix: / }, cluster: app }
clusters:
  - { name: app, endpoints: ["${upstream.address}"] }
`);
    const session = await connectH2(sidecar.ports.in!);
    try {
      const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
      const inflight = h2Request(session, { ':method': 'GET', ':path': '/slow' }, undefined, { timeoutMs: 15_000 });
      await waitUntil(() => release !== undefined, 5000, 'the request upstream');
      const drained = await fetch(`http://127.0.0.1:${sidecar.adminPort}/drain`, { method: 'POST' });
      assert.ok(drained.status < 300, `POST /drain: ${drained.status}`);
      assert.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR);
      assert.throws(() => session.request({ ':path': '/new' }), (err: NodeJS.ErrnoException) => /ERR_HTTP2_(GOAWAY|INVALID)_SESSION/.test(err.code ?? ''));
      release!();
      const r = await inflight;
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'finished');
      assert.equal(upstream.requests.filter((q) => q.url === '/new').length, 0);
      const metrics = await metricsText(sidecar.adminPort);
      assert.match(metrics, /sidecar_h2_goaways_total\{side="downstream",direction="sent",code="NO_ERROR"\} [1-9]/);
    } finally {
      session.destroy();
      await sidecar.stop();
      await upstream.close();
    }
  });
});
