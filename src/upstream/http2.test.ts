// Http2Upstream timers on an injected clock, against a real local HTTP/2 server: idle expiry (re-armed for what is
// left after the session was used again) and PING keep-alive that keeps a live session.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { FakeClock, testRequest } from '../policies/testing.js';
import { Http2Upstream } from './http2.js';
import { testUpstreamOptions } from './testing.js';
import type { ProxyResponse } from '../core/service.js';

const options = testUpstreamOptions;

async function drain(res: ProxyResponse): Promise<void> {
  const body = res.body;
  if (body === null || Buffer.isBuffer(body)) return;
  for await (const _ of body) void _;
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 150));

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 3000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('Http2Upstream on an injected clock', () => {
  let server: http2.Http2Server;
  let address: string;
  let open = 0;
  let pings = 0;

  before(async () => {
    server = http2.createServer();
    server.on('session', (s) => {
      open++;
      s.on('ping', () => pings++);
      s.on('close', () => open--);
    });
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('closes a session idle for keep_alive_timeout, counting from its last use', { timeout: 10_000 }, async () => {
    const clock = new FakeClock();
    const up = new Http2Upstream(options(address, { keepAliveTimeout: 60_000 }), undefined, clock);
    try {
      const r1 = testRequest();
      await drain(await up.request(r1, r1.cancel));
      await until(() => open === 1, 'the session');
      await settle(); // the stream's close, which frees its slot, comes a little after its body
      clock.advance(36_000);
      const r2 = testRequest();
      await drain(await up.request(r2, r2.cancel));
      await settle();
      clock.advance(30_000); // the first timer fires at 60 s: used at 36 s, so 36 s are left
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(up.connections, 1, 'still open 30 s after its last use');
      clock.advance(36_000);
      await until(() => up.connections === 0 && open === 0, `the idle session to close (client ${up.connections}, server ${open}, t ${clock.now()})`);
    } finally {
      await up.close();
    }
  });

  it('PINGs a session every keepalive_interval and keeps it while the ACKs come', { timeout: 10_000 }, async () => {
    const clock = new FakeClock();
    const up = new Http2Upstream(options(address, { keepAliveTimeout: 0, h2KeepaliveInterval: 1000, h2KeepaliveTimeout: 500 }), undefined, clock);
    try {
      const r = testRequest();
      await drain(await up.request(r, r.cancel));
      const before = pings;
      for (let i = 1; i <= 3; i++) {
        // The next PING is due keepalive_interval after the last ACK: at 1000, 2000, 3000.
        clock.advance(i === 1 ? 1000 : 1);
        await until(() => pings === before + i, `PING ${i}`);
        await new Promise((r) => setTimeout(r, 30)); // the ACK comes back
        clock.advance(999); // past its 500 ms deadline, up to the next PING
        await new Promise((r) => setImmediate(r));
        assert.equal(up.connections, 1, `alive after PING ${i}`);
      }
    } finally {
      await up.close();
    }
  });
});
