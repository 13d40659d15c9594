// Strict HTTP/1.1 request parsing at the sidecar's edge: ambiguous or malformed requests are refused with 400/417/501
// (431/414/413 for limits), the connection is closed, nothing reaches the upstream, and the sidecar keeps serving.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rawRequest } from '../helpers/client.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { parseRawResponse, rawExchange, rawFirstResponse, sleep } from '../helpers/strict-net.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

/** One upstream per test case, so "the upstream received nothing" is checked in isolation. */
const CASES = [
  'cl-te', 'te-cl', 'two-cl', 'te-xchunked', 'te-space-colon', 'te-chunked-identity', 'te-two-headers', 'te-gzip-chunked',
  'chunk-nonhex', 'chunk-overflow', 'chunk-negative', 'chunk-after-valid', 'obs-fold', 'bare-lf', 'bare-lf-header', 'ctl-soh', 'ctl-nul',
  'bare-cr', 'ctl-del', 'no-host', 'dup-host', 'te-http10', 'expect-unknown', 'smuggle-clte', 'smuggle-tecl',
  'smuggle-te-obfuscated', 'smuggle-te-te', 'hdr-100k', 'hdr-10k-small', 'hdr-6k-small', 'uri-long', 'uri-ok',
  'tl-cl', 'tl-cl-hidden', 'tl-chunked', 'tl-chunked-split', 'body-under-limit',
] as const;
type CaseName = (typeof CASES)[number];

describe('strict request parsing', () => {
  const victims = new Map<CaseName, TestUpstream>();
  let good: TestUpstream;
  let smuggled: TestUpstream;
  let sidecar: RunningSidecar;
  let port: number;
  let smallPort: number;

  before(async () => {
    good = await startUpstream();
    smuggled = await startUpstream();
    for (const c of CASES) victims.set(c, await startUpstream());
    const routes = [
      `      - { name: good, match: { prefix: /good }, cluster: good }`,
      `      - { name: smuggled, match: { prefix: /smuggled }, cluster: smuggled }`,
      ...CASES.map((c) => `      - { name: ${c}, match: { prefix: /${c}/ }, cluster: ${c}, max_request_body: 1KiB }`),
    ].join('\n');
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
${routes}
  - name: small
    port: 0
    limits: { max_header_bytes: 8KiB, max_uri_length: 256 }
    routes:
${routes}
clusters:
  - { name: good, endpoints: ["${good.address}"] }
  - { name: smuggled, endpoints: ["${smuggled.address}"] }
${CASES.map((c) => `  - { name: ${c}, endpoints: ["${victims.get(c)!.address}"] }`).join('\n')}
`);
    port = sidecar.ports.in!;
    smallPort = sidecar.ports.small!;
  });

  after(async () => {
    await sidecar.stop();
    await good.close();
    await smuggled.close();
    for (const v of victims.values()) await v.close();
  });

  /** The sidecar still answers a well-formed request on a new connection. */
  async function stillServes(p = port): Promise<void> {
    const before = good.requests.length;
    const r = await rawRequest(p, 'GET /good/after HTTP/1.1\r\nHost: app.local\r\nConnection: close\r\n\r\n', 5000);
    assert.equal(r.status, 200, `follow-up request failed:\n${r.data}`);
    assert.equal(good.requests.length, before + 1);
  }

  /** Nothing reached the case's upstream (no request, not even a TCP connection), nor the smuggled target. */
  async function upstreamUntouched(c: CaseName): Promise<void> {
    await sleep(250); // give a wrongly forwarded request time to arrive
    const v = victims.get(c)!;
    assert.equal(v.requests.length, 0, `upstream received requests: ${JSON.stringify(v.requests.map((r) => `${r.method} ${r.url}`))}`);
    assert.equal(v.connections(), 0, 'upstream received a TCP connection');
    assert.equal(smuggled.connections(), 0, 'the smuggled target received a TCP connection');
    assert.equal(smuggled.requests.length, 0, 'the smuggled request reached an upstream');
  }

  async function expectRejected(
    c: CaseName,
    payload: string | Buffer,
    statuses: readonly number[],
    opts: { flags?: readonly string[]; listenerPort?: number } = {},
  ): Promise<void> {
    const p = opts.listenerPort ?? port;
    const r = await rawRequest(p, payload, 3000);
    const res = parseRawResponse(r.data);
    assert.ok(res.status !== undefined && statuses.includes(res.status), `expected status ${statuses.join('/')}, got:\n${r.data.slice(0, 600)}`);
    assert.ok((opts.flags ?? ['DPE']).includes(res.headers['x-sidecar-flag'] ?? ''), `x-sidecar-flag: ${res.headers['x-sidecar-flag']}\n${r.data.slice(0, 600)}`);
    assert.equal(r.closed, true, 'the sidecar must close the connection after refusing the request');
    const answers = r.data.match(/(^|\r\n)HTTP\/1\.[01] \d{3} /g) ?? [];
    assert.equal(answers.length, 1, `exactly one response to one refused request, got:\n${r.data.slice(0, 1200)}`);
    await upstreamUntouched(c);
    await stillServes(p);
  }

  const H = (c: CaseName, method = 'GET'): string => `${method} /${c}/x HTTP/1.1\r\nHost: app.local\r\n`;

  describe('request framing (Content-Length / Transfer-Encoding)', () => {
    it('rejects Content-Length together with Transfer-Encoding', async () => {
      await expectRejected('cl-te', `${H('cl-te', 'POST')}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, [400]);
    });
    it('rejects two differing Content-Length headers', async () => {
      await expectRejected('two-cl', `${H('two-cl', 'POST')}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`, [400]);
    });
    it('rejects an unknown transfer coding "xchunked" (400 or 501)', async () => {
      await expectRejected('te-xchunked', `${H('te-xchunked', 'POST')}Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, [400, 501]);
    });
    it('rejects "Transfer-Encoding : chunked" (whitespace before the colon)', async () => {
      await expectRejected('te-space-colon', `${H('te-space-colon', 'POST')}Transfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, [400]);
    });
    it('rejects "Transfer-Encoding: chunked, identity" (chunked not last)', async () => {
      await expectRejected('te-chunked-identity', `${H('te-chunked-identity', 'POST')}Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, [400]);
    });
    it('rejects two Transfer-Encoding headers (chunked, then identity)', async () => {
      await expectRejected('te-two-headers', `${H('te-two-headers', 'POST')}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, [400]);
    });
    it('answers 501 to a valid but unsupported transfer coding ("gzip, chunked")', async () => {
      await expectRejected('te-gzip-chunked', `${H('te-gzip-chunked', 'POST')}Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, [501]);
    });
    it('rejects a non-hex chunk size', async () => {
      await expectRejected('chunk-nonhex', `${H('chunk-nonhex', 'POST')}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`, [400]);
    });
    it('rejects an overflowing chunk size', async () => {
      await expectRejected('chunk-overflow', `${H('chunk-overflow', 'POST')}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nhello\r\n0\r\n\r\n`, [400]);
    });
    it('rejects a negative chunk size', async () => {
      await expectRejected('chunk-negative', `${H('chunk-negative', 'POST')}Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n`, [400]);
    });
    it('rejects an invalid chunk size that follows a valid chunk in the same packet', async () => {
      await expectRejected('chunk-after-valid', `${H('chunk-after-valid', 'POST')}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nhello\r\n0\r\n\r\n`, [400]);
    });
    it('rejects Transfer-Encoding in an HTTP/1.0 request', async () => {
      await expectRejected('te-http10', `POST /te-http10/x HTTP/1.0\r\nHost: app.local\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, [400]);
    });
  });

  describe('header syntax', () => {
    it('rejects an obs-fold (continuation) header line', async () => {
      await expectRejected('obs-fold', `${H('obs-fold')}X-Folded: first\r\n second\r\n\r\n`, [400]);
    });
    it('rejects bare LF line endings', async () => {
      await expectRejected('bare-lf', `GET /bare-lf/x HTTP/1.1\nHost: app.local\nX-A: b\n\n`, [400]);
    });
    it('rejects a bare LF ending one header line', async () => {
      await expectRejected('bare-lf-header', `GET /bare-lf-header/x HTTP/1.1\r\nHost: app.local\nX-A: b\r\n\r\n`, [400]);
    });
    it('rejects a control character (0x01) in a header value', async () => {
      await expectRejected('ctl-soh', `${H('ctl-soh')}X-A: a\x01b\r\n\r\n`, [400]);
    });
    it('rejects a NUL in a header value', async () => {
      await expectRejected('ctl-nul', `${H('ctl-nul')}X-A: a\x00b\r\n\r\n`, [400]);
    });
    it('rejects a bare CR in a header value', async () => {
      await expectRejected('bare-cr', `${H('bare-cr')}X-A: a\rb\r\n\r\n`, [400]);
    });
    it('rejects DEL (0x7f) in a header value', async () => {
      await expectRejected('ctl-del', `${H('ctl-del')}X-A: a\x7fb\r\n\r\n`, [400]);
    });
    it('rejects an HTTP/1.1 request without Host', async () => {
      await expectRejected('no-host', `GET /no-host/x HTTP/1.1\r\nX-A: b\r\n\r\n`, [400]);
    });
    it('rejects a request with two Host headers', async () => {
      await expectRejected('dup-host', `GET /dup-host/x HTTP/1.1\r\nHost: app.local\r\nHost: evil.local\r\n\r\n`, [400]);
    });
    it('answers 417 to an unknown Expect, closes, and forwards nothing', async () => {
      await expectRejected('expect-unknown', `${H('expect-unknown', 'POST')}Expect: 200-ok\r\nContent-Length: 3\r\n\r\nabc`, [417]);
    });
  });

  describe('request smuggling: the hidden request never reaches an upstream', () => {
    const hidden = 'GET /smuggled/admin HTTP/1.1\r\nHost: app.local\r\n\r\n';
    it('CL.TE: Content-Length covers the hidden request, chunked ends before it', async () => {
      const body = `0\r\n\r\n${hidden}`;
      await expectRejected('smuggle-clte', `${H('smuggle-clte', 'POST')}Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`, [400]);
    });
    it('TE.CL: the chunk carries the hidden request, Content-Length ends before it', async () => {
      const chunk = `${hidden}`;
      const body = `${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`;
      await expectRejected('smuggle-tecl', `${H('smuggle-tecl', 'POST')}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${body}`, [400]);
    });
    it('CL.TE with an obfuscated Transfer-Encoding ("Transfer-Encoding : chunked")', async () => {
      const body = `0\r\n\r\n${hidden}`;
      await expectRejected('smuggle-te-obfuscated', `${H('smuggle-te-obfuscated', 'POST')}Content-Length: ${body.length}\r\nTransfer-Encoding : chunked\r\n\r\n${body}`, [400]);
    });
    it('TE.TE: "chunked" plus a second bogus Transfer-Encoding, with Content-Length', async () => {
      const body = `0\r\n\r\n${hidden}`;
      await expectRejected('smuggle-te-te', `${H('smuggle-te-te', 'POST')}Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n${body}`, [400]);
    });
    it('TE.CL with Content-Length: 0: the hidden request after the last chunk is never parsed', async () => {
      await expectRejected('te-cl', `${H('te-cl', 'POST')}Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n${hidden}`, [400]);
    });
  });

  describe('limits', () => {
    it('answers 431 to a 100 KiB header with the default 60 KiB limit', async () => {
      await expectRejected('hdr-100k', `${H('hdr-100k')}X-Big: ${'a'.repeat(100 * 1024)}\r\n\r\n`, [431]);
    });
    it('answers 431 to a 10 KiB header when max_header_bytes is 8KiB', async () => {
      await expectRejected('hdr-10k-small', `${H('hdr-10k-small')}X-Big: ${'a'.repeat(10 * 1024)}\r\n\r\n`, [431], { listenerPort: smallPort });
    });
    it('accepts a 6 KiB header when max_header_bytes is 8KiB (control)', async () => {
      const r = await rawRequest(smallPort, `${H('hdr-6k-small')}X-Big: ${'a'.repeat(6 * 1024)}\r\nConnection: close\r\n\r\n`, 5000);
      assert.equal(r.status, 200, r.data.slice(0, 400));
      assert.equal(victims.get('hdr-6k-small')!.requests.length, 1);
    });
    it('answers 414 to a request target over max_uri_length', async () => {
      await expectRejected('uri-long', `GET /uri-long/${'a'.repeat(300)} HTTP/1.1\r\nHost: app.local\r\n\r\n`, [414], { listenerPort: smallPort });
    });
    it('accepts a request target under max_uri_length (control)', async () => {
      const r = await rawRequest(smallPort, `GET /uri-ok/${'a'.repeat(200)} HTTP/1.1\r\nHost: app.local\r\nConnection: close\r\n\r\n`, 5000);
      assert.equal(r.status, 200, r.data.slice(0, 400));
      assert.equal(victims.get('uri-ok')!.requests.length, 1);
    });

    it('answers 413 TL to a Content-Length over the route max_request_body, before contacting the upstream', async () => {
      const r = await rawFirstResponse(port, `${H('tl-cl', 'POST')}Content-Length: 2048\r\n\r\n${'a'.repeat(2048)}`, 3000);
      const res = parseRawResponse(r.data);
      assert.equal(res.status, 413, r.data.slice(0, 400));
      assert.equal(res.headers['x-sidecar-flag'], 'TL');
      await upstreamUntouched('tl-cl');
      await stillServes();
    });

    it('413 with Content-Length: the unread body is never parsed as a request', async () => {
      const body = `${'GET /smuggled/inbody HTTP/1.1\r\nHost: app.local\r\n\r\n'.repeat(40)}`;
      const r = await rawExchange(port, [`${H('tl-cl-hidden', 'POST')}Content-Length: ${body.length}\r\n\r\n${body}`, 'GET /good/next HTTP/1.1\r\nHost: app.local\r\nConnection: close\r\n\r\n'], 50, 2000);
      const res = parseRawResponse(r.data);
      assert.equal(res.status, 413, r.data.slice(0, 400));
      assert.equal(res.headers['x-sidecar-flag'], 'TL');
      assert.doesNotMatch(r.data, /smuggled/);
      await upstreamUntouched('tl-cl-hidden');
      await stillServes();
    });

    it('answers 413 TL to a chunked body over the limit; the upstream never gets a complete request', async () => {
      const chunk = 'b'.repeat(2048);
      const r = await rawFirstResponse(port, `${H('tl-chunked', 'POST')}Transfer-Encoding: chunked\r\n\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`, 3000);
      const res = parseRawResponse(r.data);
      assert.equal(res.status, 413, r.data.slice(0, 400));
      assert.equal(res.headers['x-sidecar-flag'], 'TL');
      await sleep(300);
      assert.equal(victims.get('tl-chunked')!.requests.length, 0, 'upstream received a complete request');
      await stillServes();
    });

    it('answers 413 TL when a chunked body crosses the limit after forwarding started; the upstream request is aborted', async () => {
      const v = victims.get('tl-chunked-split')!;
      const first = 'c'.repeat(600);
      const second = 'd'.repeat(600);
      const r = await rawExchange(
        port,
        [
          `${H('tl-chunked-split', 'POST')}Transfer-Encoding: chunked\r\n\r\n${first.length.toString(16)}\r\n${first}\r\n`,
          `${second.length.toString(16)}\r\n${second}\r\n0\r\n\r\n`,
        ],
        300,
        2000,
      );
      const res = parseRawResponse(r.data);
      assert.equal(res.status, 413, r.data.slice(0, 400));
      assert.equal(res.headers['x-sidecar-flag'], 'TL');
      await sleep(300);
      assert.equal(v.requests.length, 0, 'upstream received a complete request');
      await stillServes();
    });

    it('forwards a chunked body under the limit intact (control)', async () => {
      const chunk = 'e'.repeat(900);
      const r = await rawRequest(port, `${H('body-under-limit', 'POST')}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`, 5000);
      assert.equal(r.status, 200, r.data.slice(0, 400));
      const v = victims.get('body-under-limit')!;
      assert.equal(v.requests.length, 1);
      assert.equal(v.requests[0]!.body.toString(), chunk);
    });
  });
});
