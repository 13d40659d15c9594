// Upstream failures turn into answers that say what happened: refused / timed-out connects, route timeouts, resets,
// early closes, invalid responses and missing routes, each with its status, response flag, error header and access log.
import assert from 'node:assert/strict';
import type http from 'node:http';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { curl, rawRequest } from '../helpers/client.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { accessLogFor, httpRequest, parseRawResponse, startBlackhole, waitUntil, type Blackhole } from '../helpers/strict-net.js';
import { freePort, startRawUpstream, startUpstream, type TestUpstream } from '../helpers/upstream.js';

type RawUpstream = Awaited<ReturnType<typeof startRawUpstream>>;

/** A raw upstream that answers each request (after its head arrives) by calling `answer`. */
function onRequestHead(answer: (s: net.Socket) => void): Promise<RawUpstream> {
  return startRawUpstream((s) => {
    let head = '';
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onData);
      answer(s);
    };
    s.on('data', onData);
  });
}

describe('upstream failures', () => {
  let sidecar: RunningSidecar;
  let port: number;
  let refusedPort: number;
  let blackhole: Blackhole;
  let hanging: TestUpstream;
  const hangingClosed: string[] = [];
  const raws: RawUpstream[] = [];
  let resetCl: RawUpstream;
  let resetChunked: RawUpstream;
  let closeBeforeHeaders: RawUpstream;
  let endBeforeHeaders: RawUpstream;
  let badStatus: RawUpstream;
  let notHttp: RawUpstream;
  let badHeader: RawUpstream;

  before(async () => {
    refusedPort = await freePort();
    blackhole = await startBlackhole();
    hanging = await startUpstream((req: http.IncomingMessage, res: http.ServerResponse) => {
      // Never answers; records when the proxy gives up on the request.
      res.once('close', () => hangingClosed.push(req.url ?? ''));
    });
    resetCl = await onRequestHead((s) => {
      s.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\n\r\n0123456789');
      setTimeout(() => s.destroy(), 100);
    });
    resetChunked = await onRequestHead((s) => {
      s.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\na\r\n0123456789\r\n');
      setTimeout(() => s.destroy(), 100);
    });
    closeBeforeHeaders = await onRequestHead((s) => s.destroy());
    endBeforeHeaders = await onRequestHead((s) => s.end());
    badStatus = await onRequestHead((s) => s.write('HTTP/1.1 abc Nonsense\r\ncontent-length: 0\r\n\r\n'));
    notHttp = await onRequestHead((s) => s.write('SSH-2.0-OpenSSH_9.2\r\n\r\n'));
    badHeader = await onRequestHead((s) => s.write('HTTP/1.1 200 OK\r\nbad header line\r\ncontent-length: 2\r\n\r\nok'));
    raws.push(resetCl, resetChunked, closeBeforeHeaders, endBeforeHeaders, badStatus, notHttp, badHeader);

    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { match: { prefix: /refused }, cluster: refused }
      - { match: { prefix: /connect-timeout }, cluster: blackhole }
      - { match: { prefix: /route-timeout }, cluster: hanging, timeout: 300ms }
      - { match: { prefix: /reset-cl }, cluster: reset_cl }
      - { match: { prefix: /reset-chunked }, cluster: reset_chunked }
      - { match: { prefix: /close-before-headers }, cluster: close_before_headers }
      - { match: { prefix: /end-before-headers }, cluster: end_before_headers }
      - { match: { prefix: /bad-status }, cluster: bad_status }
      - { match: { prefix: /not-http }, cluster: not_http }
      - { match: { prefix: /bad-header }, cluster: bad_header }
clusters:
  - { name: refused, endpoints: ["127.0.0.1:${refusedPort}"] }
  - { name: blackhole, endpoints: ["${blackhole.address}"], connect_timeout: 500ms }
  - { name: hanging, endpoints: ["${hanging.address}"] }
  - { name: reset_cl, endpoints: ["${resetCl.address}"] }
  - { name: reset_chunked, endpoints: ["${resetChunked.address}"] }
  - { name: close_before_headers, endpoints: ["${closeBeforeHeaders.address}"] }
  - { name: end_before_headers, endpoints: ["${endBeforeHeaders.address}"] }
  - { name: bad_status, endpoints: ["${badStatus.address}"] }
  - { name: not_http, endpoints: ["${notHttp.address}"] }
  - { name: bad_header, endpoints: ["${badHeader.address}"] }
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar.stop();
    await blackhole.close();
    await hanging.close();
    for (const r of raws) await r.close();
  });

  async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
    const t0 = performance.now();
    const v = await f();
    return [v, performance.now() - t0];
  }

  it('refused connect: 503 UF within 1 s, naming the endpoint', async () => {
    const [res, ms] = await timed(() => httpRequest(port, { path: '/refused/a', headers: { host: 'app.local' } }));
    assert.equal(res.status, 503);
    assert.equal(res.headers['x-sidecar-flag'], 'UF');
    assert.ok(String(res.headers['x-sidecar-error']).includes(`127.0.0.1:${refusedPort}`), String(res.headers['x-sidecar-error']));
    assert.ok(ms < 1000, `took ${ms} ms`);
    const log = await accessLogFor(sidecar, '/refused/a');
    assert.equal(log.status, 503);
    assert.equal(log.response_flag, 'UF');
    assert.match(String(log.error), new RegExp(`127\\.0\\.0\\.1:${refusedPort}`));
    assert.equal(log.upstream, `127.0.0.1:${refusedPort}`);
  });

  it('connect timeout (loopback SYNs dropped): 504 UF mentioning "connect timeout"', async () => {
    const [res, ms] = await timed(() => httpRequest(port, { path: '/connect-timeout/a', headers: { host: 'app.local' } }));
    assert.equal(res.status, 504, res.body);
    assert.equal(res.headers['x-sidecar-flag'], 'UF');
    assert.match(String(res.headers['x-sidecar-error']), /connect timeout/);
    assert.ok(String(res.headers['x-sidecar-error']).includes(blackhole.address));
    assert.ok(ms >= 450, `answered after ${ms} ms, before connect_timeout 500ms`);
    assert.ok(ms < 3000, `took ${ms} ms`);
    const log = await accessLogFor(sidecar, '/connect-timeout/a');
    assert.equal(log.status, 504);
    assert.equal(log.response_flag, 'UF');
    assert.match(String(log.error), /connect timeout/);
  });

  it('route timeout: 504 UT within ~1 s and the upstream request is aborted', async () => {
    const [res, ms] = await timed(() => httpRequest(port, { path: '/route-timeout/a', headers: { host: 'app.local' } }));
    assert.equal(res.status, 504, res.body);
    assert.equal(res.headers['x-sidecar-flag'], 'UT');
    assert.match(String(res.headers['x-sidecar-error']), /timeout/);
    assert.ok(ms >= 280 && ms < 1000, `took ${ms} ms for a 300ms route timeout`);
    assert.equal(hanging.requests.length, 1, 'the upstream saw the request');
    assert.ok(await waitUntil(() => hangingClosed.includes('/route-timeout/a'), 2000), 'the upstream request was not aborted');
    const log = await accessLogFor(sidecar, '/route-timeout/a');
    assert.equal(log.status, 504);
    assert.equal(log.response_flag, 'UT');
    assert.match(String(log.error), /timeout/);
  });

  describe('upstream resets mid-response: the client never sees a complete response', () => {
    it('content-length response, curl reports a transfer error', async () => {
      const r = await curl(['-i', `http://127.0.0.1:${port}/reset-cl/curl`], { timeoutMs: 5000 });
      assert.notEqual(r.code, 0, `curl exited 0:\n${r.stdout}`);
      assert.match(r.stdout, /^HTTP\/1\.1 200/);
    });

    it('content-length response, raw socket sees the close before 1000 body bytes', async () => {
      const r = await rawRequest(port, 'GET /reset-cl/raw HTTP/1.1\r\nHost: app.local\r\n\r\n', 5000);
      const res = parseRawResponse(r.data);
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-length'], '1000');
      assert.equal(r.closed, true, 'connection left open');
      assert.ok(Buffer.byteLength(res.body, 'latin1') < 1000, 'a complete body arrived');
      assert.equal(res.body, '0123456789');
    });

    it('chunked response, curl reports a transfer error', async () => {
      const r = await curl(['-i', `http://127.0.0.1:${port}/reset-chunked/curl`], { timeoutMs: 5000 });
      assert.notEqual(r.code, 0, `curl exited 0:\n${r.stdout}`);
    });

    it('chunked response, raw socket sees the close without the terminating chunk', async () => {
      const r = await rawRequest(port, 'GET /reset-chunked/raw HTTP/1.1\r\nHost: app.local\r\n\r\n', 5000);
      const res = parseRawResponse(r.data);
      assert.equal(res.status, 200);
      assert.equal(r.closed, true, 'connection left open');
      assert.match(res.headers['transfer-encoding'] ?? '', /chunked/);
      assert.doesNotMatch(res.body, /(^|\r\n)0\r\n\r\n$/, 'the body was terminated as if complete');
    });

    it('access log blames the upstream reset (UR), not the downstream (DC)', async () => {
      for (const path of ['/reset-cl/raw', '/reset-chunked/raw']) {
        const log = await accessLogFor(sidecar, path);
        assert.equal(log.response_flag, 'UR', `${path}: ${JSON.stringify(log)}`);
        assert.match(String(log.error), /reset/i);
      }
    });
  });

  it('upstream closes (reset) before sending headers: 503 UC', async () => {
    const res = await httpRequest(port, { path: '/close-before-headers/a', headers: { host: 'app.local' } });
    assert.equal(res.status, 503, res.body);
    assert.equal(res.headers['x-sidecar-flag'], 'UC');
    assert.ok(String(res.headers['x-sidecar-error']).includes(closeBeforeHeaders.address));
    const log = await accessLogFor(sidecar, '/close-before-headers/a');
    assert.equal(log.status, 503);
    assert.equal(log.response_flag, 'UC');
    assert.match(String(log.error), /closed/);
  });

  it('upstream half-closes (FIN) before sending headers: 503 UC', async () => {
    const res = await httpRequest(port, { path: '/end-before-headers/a', headers: { host: 'app.local' } });
    assert.equal(res.status, 503, res.body);
    assert.equal(res.headers['x-sidecar-flag'], 'UC');
    const log = await accessLogFor(sidecar, '/end-before-headers/a');
    assert.equal(log.response_flag, 'UC');
    assert.ok(typeof log.error === 'string' && log.error.length > 0);
  });

  describe('invalid upstream response: 502 UPE', () => {
    for (const [path, what] of [
      ['/bad-status/a', 'a non-numeric status code'],
      ['/not-http/a', 'a non-HTTP status line'],
      ['/bad-header/a', 'a header line without a colon'],
    ] as const) {
      it(`upstream sends ${what}`, async () => {
        const res = await httpRequest(port, { path, headers: { host: 'app.local' } });
        assert.equal(res.status, 502, `${res.status} ${String(res.headers['x-sidecar-flag'])}: ${res.body}`);
        assert.equal(res.headers['x-sidecar-flag'], 'UPE');
        assert.match(String(res.headers['x-sidecar-error']), /invalid response/);
        const log = await accessLogFor(sidecar, path);
        assert.equal(log.status, 502);
        assert.equal(log.response_flag, 'UPE');
      });
    }
  });

  it('no route: 404 NR, logged with the flag and the cause', async () => {
    const res = await httpRequest(port, { path: '/nowhere/a', headers: { host: 'app.local' } });
    assert.equal(res.status, 404);
    assert.equal(res.headers['x-sidecar-flag'], 'NR');
    assert.match(String(res.headers['x-sidecar-error']), /no route/);
    const log = await accessLogFor(sidecar, '/nowhere/a');
    assert.equal(log.status, 404);
    assert.equal(log.response_flag, 'NR');
    assert.match(String(log.error), /no route/);
    assert.equal(log.upstream, null);
  });

  it('keeps serving after all of the above (no route still answers, process alive)', async () => {
    assert.equal(sidecar.proc.exitCode, null);
    const res = await httpRequest(port, { path: '/nowhere/b', headers: { host: 'app.local' } });
    assert.equal(res.status, 404);
  });
});
