// `node dist/bench/payload.js`: what protobuf bodies and hop compression buy on the sidecar hop for a realistic JSON
// payload (a nested order of a few KiB): bytes of one body as JSON, protobuf and compressed; the in-process cost of
// converting it; and requests through two sidecars (h2c hop, a byte-counting relay between them) with plain JSON,
// protobuf bodies and brotli, interleaved rounds, medians. BENCH_PAYLOAD_SECONDS, BENCH_PAYLOAD_ROUNDS tune it.
import { writeFileSync, mkdtempSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { messageFromJson, messageToJson } from '../src/filters/transcode/json-mapping.js';
import { compileBodySchema } from '../src/payloads/protobuf-schema.js';
import { orderFor, orderRequest } from '../test/helpers/orders.js';
import { LOAD_CPU, PROXY_CPU, children, startPinned, waitForPort, sleep } from './lib.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SECONDS = Number(process.env.BENCH_PAYLOAD_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_PAYLOAD_ROUNDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_PAYLOAD_CONCURRENCY ?? 8);
const PROTO = path.join(root, 'examples/polyglot/orders.proto');
const ITEMS = 12;

const req = orderRequest(ITEMS);
const res = orderFor(req);
const schema = compileBodySchema({ proto: [PROTO], include: [], request: 'shop.v1.OrderRequest', response: 'shop.v1.Order', max_body: 1 << 20, emit_defaults: false });
const enc = schema.encodeOptions;

function bytesRow(name: string, json: unknown, type: NonNullable<typeof schema.request>): string {
  const text = Buffer.from(JSON.stringify(json));
  const pbBytes = Buffer.from(type.encode(type.fromObject(messageFromJson(type, json, enc))).finish());
  const gz = (b: Buffer): number => zlib.gzipSync(b, { level: 4 }).length;
  const br = (b: Buffer): number => zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } }).length;
  return `| ${name} | ${text.length} | ${gz(text)} | ${br(text)} | ${pbBytes.length} | ${gz(pbBytes)} | ${br(pbBytes)} |`;
}

function convertCost(): string {
  const type = schema.response!;
  const text = JSON.stringify(res);
  const n = 2000;
  let bytes: Uint8Array = new Uint8Array(0);
  let t = performance.now();
  for (let i = 0; i < n; i++) {
    const value = JSON.parse(text) as unknown;
    bytes = type.encode(type.fromObject(messageFromJson(type, value, enc))).finish();
    messageToJson(type, type.decode(bytes) as unknown as Record<string, unknown>, schema.decodeOptions); // the lossless check
  }
  const encodeUs = ((performance.now() - t) * 1000) / n;
  t = performance.now();
  for (let i = 0; i < n; i++) JSON.stringify(messageToJson(type, type.decode(bytes) as unknown as Record<string, unknown>, schema.decodeOptions));
  const decodeUs = ((performance.now() - t) * 1000) / n;
  t = performance.now();
  for (let i = 0; i < n; i++) JSON.stringify(JSON.parse(text));
  const plainUs = ((performance.now() - t) * 1000) / n;
  return `| Order (${text.length} B JSON) | ${encodeUs.toFixed(1)} | ${decodeUs.toFixed(1)} | ${plainUs.toFixed(1)} |`;
}

function relay(target: number): Promise<{ port: number; bytes: () => number; server: net.Server }> {
  let bytes = 0;
  // noDelay on both sides: with Nagle, a relayed small frame waits for the peer's delayed ACK (40 ms per exchange).
  const server = net.createServer({ noDelay: true }, (d) => {
    const u = net.connect({ port: target, host: '127.0.0.1', noDelay: true });
    d.on('data', (c: Buffer) => (bytes += c.length));
    u.on('data', (c: Buffer) => (bytes += c.length));
    d.pipe(u).pipe(d);
    const cut = (): void => void (d.destroy(), u.destroy());
    d.on('error', cut).on('close', cut);
    u.on('error', cut).on('close', cut);
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r({ port: (server.address() as net.AddressInfo).port, bytes: () => bytes, server })));
}

interface Variant { name: string; route: string; outPort: number; relay: Awaited<ReturnType<typeof relay>> }

async function main(): Promise<void> {
  console.log(`## Payload bytes (one body, ${ITEMS} line items; gzip/brotli at level 4)\n`);
  console.log('| body | JSON | JSON gzip | JSON br | protobuf | protobuf gzip | protobuf br |\n|---|---|---|---|---|---|---|');
  console.log(bytesRow('OrderRequest', req, schema.request!));
  console.log(bytesRow('Order', res, schema.response!));
  console.log('\n## Conversion cost in process (µs per body, mean of 2000)\n');
  console.log('| body | JSON→protobuf (+ lossless check) | protobuf→JSON | JSON.parse+stringify only |\n|---|---|---|---|');
  console.log(convertCost());

  const app = http.createServer((rq, rs) => {
    const parts: Buffer[] = [];
    rq.on('data', (c: Buffer) => parts.push(c));
    rq.on('end', () => {
      rs.writeHead(200, { 'content-type': 'application/json' });
      rs.end(JSON.stringify(orderFor(JSON.parse(Buffer.concat(parts).toString()) as ReturnType<typeof orderRequest>)));
    });
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  const appPort = (app.address() as net.AddressInfo).port;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-payload-'));
  const pbKey = `protobuf_bodies: { proto: ["${PROTO}"], request: shop.v1.OrderRequest, response: shop.v1.Order }`;
  const brKey = 'hop_compression: { algorithms: [br], min_bytes: 256 }';
  const routes = [
    { name: 'json', key: '' },
    { name: 'protobuf', key: pbKey },
    { name: 'json+br', key: brKey },
    { name: 'protobuf+br', key: `${pbKey}, ${brKey}` },
  ];
  const base = 18600;
  const inRoutes = routes.map((r) => `      - { name: ${r.name.replace('+', '_')}, match: { prefix: /${r.name.replace('+', '_')}/ }, cluster: app, prefix_rewrite: /${r.key ? `, ${r.key}` : ''} }`).join('\n');
  writeFileSync(path.join(dir, 'b.yaml'), `admin: { port: ${base + 1} }\nlisteners:\n  - name: in\n    port: ${base + 2}\n    routes:\n${inRoutes}\nclusters:\n  - { name: app, endpoints: ["127.0.0.1:${appPort}"] }\n`);
  startPinned(PROXY_CPU, [path.join(root, 'bin/sidecar.js'), 'run', '-c', path.join(dir, 'b.yaml')], { LOG_LEVEL: 'error' });
  await waitForPort(base + 2);
  const variants: Variant[] = [];
  let port = base + 10;
  for (const r of routes) {
    const rl = await relay(base + 2);
    const id = r.name.replace('+', '_');
    const outPort = port++;
    writeFileSync(path.join(dir, `a-${id}.yaml`), `admin: { port: ${port++} }\nlisteners:\n  - name: out\n    port: ${outPort}\n    hop_marker: ignore\n    routes:\n      - { name: ${id}, match: { prefix: / }, cluster: b${r.key ? `, ${r.key}` : ''} }\nclusters:\n  - { name: b, peer: sidecar, endpoints: ["127.0.0.1:${rl.port}"] }\n`);
    variants.push({ name: r.name, route: `/${id}/orders`, outPort, relay: rl });
  }
  // One sidecar A process per variant would take the CPUs from each other; they run one at a time instead.
  const body = JSON.stringify(req);
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const one = (v: Variant): Promise<void> =>
    new Promise((resolve, reject) => {
      const r = http.request({ host: '127.0.0.1', port: v.outPort, path: v.route, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (rs) => {
        rs.resume();
        rs.on('end', () => (rs.statusCode === 200 ? resolve() : reject(new Error(`${v.name}: ${rs.statusCode}`))));
      });
      r.on('error', reject);
      r.end(body);
    });
  const results = new Map<string, { rps: number[]; p50: number[]; p99: number[]; bytes: number[] }>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const v of variants) {
      const a = startPinned(PROXY_CPU, [path.join(root, 'bin/sidecar.js'), 'run', '-c', path.join(dir, `a-${v.name.replace('+', '_')}.yaml`)], { LOG_LEVEL: 'error' });
      await waitForPort(v.outPort);
      for (let i = 0; i < 20; i++) await one(v); // warm: the negotiation and the JIT
      const b0 = v.relay.bytes();
      const lat: number[] = [];
      const end = performance.now() + SECONDS * 1000;
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < end) {
          const t = performance.now();
          await one(v);
          lat.push(performance.now() - t);
        }
      }));
      const bytes = (v.relay.bytes() - b0) / lat.length;
      lat.sort((x, y) => x - y);
      const e = results.get(v.name) ?? { rps: [], p50: [], p99: [], bytes: [] };
      e.rps.push(lat.length / SECONDS);
      e.p50.push(lat[Math.floor(lat.length * 0.5)]!);
      e.p99.push(lat[Math.floor(lat.length * 0.99)]!);
      e.bytes.push(bytes);
      results.set(v.name, e);
      a.kill('SIGKILL');
      await new Promise((r) => a.once('exit', r));
      agent.destroy();
      await sleep(200);
    }
  }
  const med = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  console.log(`\n## Through two sidecars (h2c hop, ${CONCURRENCY} concurrent HTTP/1.1 clients, ${SECONDS} s x ${ROUNDS} interleaved rounds, medians; load on CPU ${LOAD_CPU}, sidecars on CPU ${PROXY_CPU})\n`);
  console.log('| hop bodies | req/s | p50 ms | p99 ms | hop bytes per exchange (both ways, HTTP/2 framing included) |\n|---|---|---|---|---|');
  for (const [name, e] of results) console.log(`| ${name} | ${med(e.rps).toFixed(0)} | ${med(e.p50).toFixed(2)} | ${med(e.p99).toFixed(2)} | ${med(e.bytes).toFixed(0)} |`);
  app.close();
  for (const v of variants) v.relay.server.close();
  for (const c of children) c.kill('SIGKILL');
}

await main();
process.exit(0);
