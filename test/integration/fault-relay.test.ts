import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, get as httpGet, type Server } from 'node:http';
import { startFaultRelay } from '../helpers/fault-relay.js';

test('the fault relay forwards, adds latency, and cuts connections on loss or a down link', async () => {
  const server: Server = createServer((_q, r) => r.end('hello'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const target = { host: '127.0.0.1', port: (server.address() as { port: number }).port };
  const relay = await startFaultRelay(target, {}, { host: '127.0.0.1', port: 0 }, () => 0.5);
  try {
    const url = `http://127.0.0.1:${relay.port}/`;
    const get = (): Promise<string> =>
      new Promise((resolve, reject) => {
        httpGet(url, { agent: false }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve(body));
          res.on('error', reject);
        }).on('error', reject);
      });
    assert.equal(await get(), 'hello');
    relay.settings.latencyMs = 150;
    const t0 = performance.now();
    assert.equal(await get(), 'hello');
    assert.ok(performance.now() - t0 >= 290, 'a request and its response each wait the latency');
    relay.settings.latencyMs = 0;
    relay.settings.loss = 0.6; // random() is 0.5: every chunk is lost
    await assert.rejects(get());
    relay.settings.loss = 0;
    relay.settings.down = true;
    await assert.rejects(get());
    assert.ok(relay.faults >= 2);
    relay.settings.down = false;
    assert.equal(await get(), 'hello');
  } finally {
    await relay.close();
    server.close();
  }
});
