// Streaming with backpressure: 1 GiB each way over HTTP/1.1 and 256 MiB each way over HTTP/2 through the sidecar,
// generated on the fly and verified by byte count and sha1, while the sidecar's RSS stays flat.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { pipeline } from 'node:stream/promises';
import { rssMiB, startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { connectH2, CountingSink, h2Request, patternSource, sampleRss } from '../helpers/proto-http.js';

const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;
const RSS_BUDGET_MIB = 50;

interface UploadResult {
  status: number;
  bytes: number;
  sha1: string;
  sentBytes: number;
  sentSha1: string;
}

function h1Upload(port: number, total: number): Promise<UploadResult> {
  const src = patternSource(total);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/upload',
        agent: false,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(total) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          try {
            const j = JSON.parse(Buffer.concat(chunks).toString()) as { bytes: number; sha1: string };
            resolve({ status: res.statusCode ?? 0, bytes: j.bytes, sha1: j.sha1, sentBytes: src.sent(), sentSha1: src.digest() });
          } catch (err) {
            reject(new Error(`bad upload answer ${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 300)} (${String(err)})`));
          }
        });
      },
    );
    req.on('error', reject);
    src.stream.pipe(req);
  });
}

function h1Download(port: number, total: number): Promise<{ status: number; bytes: number; sha1: string; contentLength: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/download?bytes=${total}`, agent: false }, (res) => {
      const sink = new CountingSink();
      pipeline(res, sink).then(
        () => resolve({ status: res.statusCode ?? 0, bytes: sink.bytes, sha1: sink.digest(), contentLength: res.headers['content-length'] }),
        reject,
      );
    });
    req.on('error', reject);
  });
}

async function h2Upload(session: http2.ClientHttp2Session, total: number, src = patternSource(total)): Promise<UploadResult> {
  const r = await h2Request(
    session,
    { ':method': 'POST', ':path': '/upload', 'content-type': 'application/octet-stream', 'content-length': String(total) },
    src.stream,
    { timeoutMs: 60_000 },
  );
  let j: { bytes: number; sha1: string };
  try {
    j = JSON.parse(r.body.toString()) as { bytes: number; sha1: string };
  } catch (err) {
    throw new Error(`bad upload answer ${r.status}: ${r.body.toString().slice(0, 300)} (${String(err)})`);
  }
  return { status: r.status, bytes: j.bytes, sha1: j.sha1, sentBytes: src.sent(), sentSha1: src.digest() };
}

async function h2Download(session: http2.ClientHttp2Session, total: number): Promise<{ status: number; bytes: number; sha1: string }> {
  const sink = new CountingSink();
  const r = await h2Request(session, { ':path': `/download?bytes=${total}` }, undefined, { timeoutMs: 60_000, sink });
  return { status: r.status, bytes: sink.bytes, sha1: sink.digest() };
}

describe('protocol: streaming with backpressure', () => {
  let upstream: TestUpstream;
  let sidecar: RunningSidecar;
  /** sha1 of each completed /download, in order. */
  const downloadDigests: string[] = [];
  /** What the upstream received on each /upload, in order. */
  const uploads: Array<{ bytes: number; sha1: string }> = [];

  before(async () => {
    upstream = await startUpstream(
      (req, res) => {
        const url = new URL(req.url ?? '/', 'http://x');
        if (url.pathname === '/upload') {
          const sink = new CountingSink();
          pipeline(req, sink).then(
            () => {
              uploads.push({ bytes: sink.bytes, sha1: sink.digest() });
              const text = JSON.stringify({ bytes: sink.bytes, sha1: sink.digest() });
              res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
              res.end(text);
            },
            () => res.destroy(),
          );
          return;
        }
        if (url.pathname === '/download') {
          const n = Number(url.searchParams.get('bytes'));
          const src = patternSource(n);
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(n) });
          pipeline(src.stream, res).then(
            () => downloadDigests.push(src.digest()),
            () => {},
          );
          return;
        }
        res.writeHead(404, { 'content-length': '0' });
        res.end();
      },
      { readBody: false },
    );
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    # The route timeout runs until the response head, which for an upload comes after the whole body.
    routes: [{ name: all, match: { prefix: / }, cluster: app, timeout: 2m }]
clusters:
  - name: app
    endpoints: ["${upstream.address}"]
`);
    // Warm up (both directions over HTTP/1.1, a download over HTTP/2) so the RSS baseline includes JIT code and
    // steady-state buffers. No HTTP/2 upload here: a failure in before() would cancel every test.
    const port = sidecar.ports.in!;
    await h1Upload(port, 32 * MiB);
    await h1Download(port, 32 * MiB);
    const s = await connectH2(port, { initialWindowSize: 1024 * 1024 });
    await h2Download(s, 16 * MiB);
    s.close();
  });
  after(async () => {
    await sidecar?.stop();
    await upstream?.close();
  });

  it('streams a 1 GiB HTTP/1.1 upload intact with flat sidecar memory', { timeout: 90_000 }, async (t) => {
    const pid = sidecar.proc.pid!;
    const baseline = await rssMiB(pid);
    const sampler = sampleRss(pid);
    const started = Date.now();
    const r = await h1Upload(sidecar.ports.in!, GiB);
    const { peak, samples } = await sampler.stop();
    const secs = (Date.now() - started) / 1000;
    t.diagnostic(`${secs.toFixed(1)}s, ${samples.length} RSS samples, baseline ${baseline.toFixed(1)} MiB, peak ${peak.toFixed(1)} MiB`);
    assert.equal(r.status, 200);
    assert.equal(r.sentBytes, GiB);
    assert.equal(r.bytes, GiB, 'upstream received every byte');
    assert.equal(r.sha1, r.sentSha1, 'upstream received the same bytes in order');
    assert.ok(samples.length >= 5, `RSS sampled ${samples.length} times`);
    assert.ok(
      peak - baseline < RSS_BUDGET_MIB,
      `sidecar RSS grew ${(peak - baseline).toFixed(1)} MiB (baseline ${baseline.toFixed(1)}, peak ${peak.toFixed(1)}) during a ${secs.toFixed(1)}s upload`,
    );
  });

  it('streams a 1 GiB HTTP/1.1 download intact with flat sidecar memory', { timeout: 90_000 }, async (t) => {
    const pid = sidecar.proc.pid!;
    const baseline = await rssMiB(pid);
    const sampler = sampleRss(pid);
    const before = downloadDigests.length;
    const started = Date.now();
    const r = await h1Download(sidecar.ports.in!, GiB);
    const { peak, samples } = await sampler.stop();
    const secs = (Date.now() - started) / 1000;
    t.diagnostic(`${secs.toFixed(1)}s, ${samples.length} RSS samples, baseline ${baseline.toFixed(1)} MiB, peak ${peak.toFixed(1)} MiB`);
    assert.equal(r.status, 200);
    assert.equal(r.contentLength, String(GiB));
    assert.equal(r.bytes, GiB, 'client received every byte');
    assert.equal(downloadDigests.length, before + 1);
    assert.equal(r.sha1, downloadDigests[before], 'client received the same bytes in order');
    assert.ok(samples.length >= 5, `RSS sampled ${samples.length} times`);
    assert.ok(
      peak - baseline < RSS_BUDGET_MIB,
      `sidecar RSS grew ${(peak - baseline).toFixed(1)} MiB (baseline ${baseline.toFixed(1)}, peak ${peak.toFixed(1)}) during a ${secs.toFixed(1)}s download`,
    );
  });

  it('streams a 256 MiB HTTP/2 upload intact with flat sidecar memory', { timeout: 90_000 }, async (t) => {
    const pid = sidecar.proc.pid!;
    const session = await connectH2(sidecar.ports.in!, { initialWindowSize: 1024 * 1024 });
    try {
      const baseline = await rssMiB(pid);
      const sampler = sampleRss(pid);
      const before = uploads.length;
      const src = patternSource(256 * MiB);
      const started = Date.now();
      // The exchange is checked last so that a response that never ends does not hide whether the body got through.
      const exchange = await h2Upload(session, 256 * MiB, src).then(
        (r) => ({ ok: true as const, r }),
        (err: unknown) => ({ ok: false as const, err }),
      );
      const { peak } = await sampler.stop();
      t.diagnostic(`HTTP/2 upload: ${((Date.now() - started) / 1000).toFixed(1)}s, RSS +${(peak - baseline).toFixed(1)} MiB`);
      assert.equal(uploads.length, before + 1, 'the upload reached the upstream');
      assert.equal(uploads[before]!.bytes, 256 * MiB, 'upstream received every uploaded byte');
      assert.equal(uploads[before]!.sha1, src.digest(), 'upload intact');
      assert.ok(
        peak - baseline < RSS_BUDGET_MIB,
        `sidecar RSS grew ${(peak - baseline).toFixed(1)} MiB (baseline ${baseline.toFixed(1)}, peak ${peak.toFixed(1)}) during an HTTP/2 upload`,
      );
      if (!exchange.ok) throw exchange.err;
      assert.equal(exchange.r.status, 200);
      assert.equal(exchange.r.bytes, 256 * MiB);
    } finally {
      session.destroy();
    }
  });

  it('streams a 256 MiB HTTP/2 download on the same listener intact with flat sidecar memory', { timeout: 90_000 }, async (t) => {
    const pid = sidecar.proc.pid!;
    const session = await connectH2(sidecar.ports.in!, { initialWindowSize: 1024 * 1024 });
    try {
      const baseline = await rssMiB(pid);
      const sampler = sampleRss(pid);
      const before = downloadDigests.length;
      const down = await h2Download(session, 256 * MiB);
      const { peak } = await sampler.stop();
      t.diagnostic(`HTTP/2 download: RSS baseline ${baseline.toFixed(1)} MiB, peak ${peak.toFixed(1)} MiB`);
      assert.equal(down.status, 200);
      assert.equal(down.bytes, 256 * MiB, 'client received every downloaded byte');
      assert.equal(down.sha1, downloadDigests[before], 'download intact');
      assert.ok(
        peak - baseline < RSS_BUDGET_MIB,
        `sidecar RSS grew ${(peak - baseline).toFixed(1)} MiB (baseline ${baseline.toFixed(1)}, peak ${peak.toFixed(1)}) during an HTTP/2 download`,
      );
    } finally {
      session.destroy();
    }
  });
});
