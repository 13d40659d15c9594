// Pipelined requests with Expect: 100-continue: an interim 100 for a request queued behind an earlier response must
// never land inside that response; the byte stream stays a clean sequence of responses, in request order.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RawConnection } from '../helpers/proto-http.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const TRIES = 100;

describe('pipelined Expect: 100-continue', () => {
  let upstream: TestUpstream;
  let sidecar: RunningSidecar;

  before(async () => {
    // Echoes the request body as the response body.
    upstream = await startUpstream((req, res, body) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, 'x-method': req.method ?? '' });
      res.end(body);
    });
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { match: { prefix: / }, cluster: app }
clusters:
  - { name: app, endpoints: ["${upstream.address}"] }
`);
  });
  after(async () => {
    await sidecar?.stop();
    await upstream?.close();
  });

  it(`a chunked POST then a PUT with Expect: 100-continue and its body, sent together: ${TRIES} clean response streams`, { timeout: 60_000 }, async () => {
    const failures: string[] = [];
    for (let i = 0; i < TRIES; i++) {
      const conn = await RawConnection.open(sidecar.ports.in!);
      try {
        await conn.write(
          `POST /post/${i} HTTP/1.1\r\nHost: app.local\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n` +
            `PUT /put/${i} HTTP/1.1\r\nHost: app.local\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nfoo`,
        );
        // The POST's response comes first and whole: no interim response for the PUT before or inside it.
        const post = await conn.readResponse({ timeoutMs: 5000 });
        const put = await conn.readFinalResponse({ timeoutMs: 5000 });
        const problems: string[] = [];
        if (post.status !== 200 || post.headers['x-method'] !== 'POST' || post.body.toString('latin1') !== 'hello') {
          problems.push(`first response ${post.statusLine} x-method=${post.headers['x-method']} body=${JSON.stringify(post.body.toString('latin1'))}`);
        }
        if (put.informational.some((r) => r.status !== 100) || put.informational.length > 1) {
          problems.push(`interim responses before the PUT's: ${put.informational.map((r) => r.statusLine).join(', ')}`);
        }
        if (put.response.status !== 200 || put.response.headers['x-method'] !== 'PUT' || put.response.body.toString('latin1') !== 'foo') {
          problems.push(`second response ${put.response.statusLine} body=${JSON.stringify(put.response.body.toString('latin1'))}`);
        }
        const rest = await conn.idle(30);
        if (rest.length > 0) problems.push(`bytes after the PUT's response: ${JSON.stringify(rest.toString('latin1').slice(0, 200))}`);
        if (problems.length) failures.push(`try ${i}: ${problems.join('; ')}`);
      } catch (err) {
        failures.push(`try ${i}: ${(err as Error).message.slice(0, 400)}`);
      } finally {
        conn.close();
      }
    }
    assert.deepEqual(failures, [], `${failures.length}/${TRIES} corrupt response streams:\n${failures.slice(0, 5).join('\n')}`);
  });
});
