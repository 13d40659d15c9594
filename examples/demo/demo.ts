// `npm run demo`: a catalog app (three instances: v1 x2, v2), its sidecar, a caller's sidecar and a light load.
// app -> client sidecar (forward proxy, :15001) -> h2c -> server sidecar (:16006) -> catalog app.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const configs = path.join(root, 'examples/demo');
const children: ChildProcess[] = [];
const servers: http.Server[] = [];

function app(port: number, version: string): Promise<void> {
  const server = http.createServer((req, res) => {
    const delay = Math.random() < 0.05 ? 80 : 2 + Math.random() * 8; // a little tail latency to look at
    setTimeout(() => {
      const body = JSON.stringify({ version, instance: port, path: req.url, request_id: req.headers['x-request-id'] });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`${body}\n`);
    }, delay);
  });
  servers.push(server);
  return new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
}

/**
 * Starts one sidecar and resolves once it logs "sidecar started"; rejects if it exits first (a port already in use,
 * say), so the demo never reports a sidecar that is not its own as ready.
 */
function sidecar(config: string, name: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(root, 'bin/sidecar.js'), 'run', '-c', path.join(configs, config)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let lastError = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 15 s`)), 15_000);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      for (const line of d.split('\n')) {
        if (line.includes('"sidecar started"')) {
          clearTimeout(timer);
          resolve(child);
        } else if (line.includes('"level":50') || line.includes('"level":60')) {
          lastError = line;
          process.stderr.write(`[${name}] ${line}\n`);
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with code ${code} before it started${lastError ? `: ${lastError}` : ''}`));
    });
  });
}

async function main(): Promise<void> {
  await Promise.all([app(18081, 'v1'), app(18082, 'v1'), app(18083, 'v2')]);
  await Promise.all([sidecar('server-sidecar.yaml', 'server-sidecar'), sidecar('client-sidecar.yaml', 'client-sidecar')]);

  // Light load: the "caller app" uses the outbound sidecar as its HTTP proxy, like HTTP_PROXY would.
  let sent = 0;
  let failed = 0;
  const load = setInterval(() => {
    sent++;
    http
      .get({ host: '127.0.0.1', port: 15001, path: 'http://catalog/items', headers: { host: 'catalog' } }, (res) => {
        if (res.statusCode !== 200) failed++;
        res.resume();
      })
      .on('error', () => failed++);
  }, 50);

  process.stdout.write(`
sidecar demo is running: catalog app (v1 on :18081 :18082, v2 on :18083)
  caller -> client sidecar (forward proxy :15001) -> HTTP/2 -> server sidecar (:16006) -> app

Try:
  curl -x http://127.0.0.1:15001 http://catalog/items            # 90% v1, 10% v2
  curl -x http://127.0.0.1:15001 -H 'x-canary: 1' http://catalog/items   # always v2
  http_proxy=http://127.0.0.1:15001 curl http://catalog/healthz   # answered by the server sidecar itself (curl reads lower-case http_proxy)
  curl -x http://127.0.0.1:15001 http://nowhere/                  # 404 with x-sidecar-flag: NR
  curl http://127.0.0.1:15000/metrics                             # client sidecar Prometheus metrics
  curl http://127.0.0.1:16000/clusters                            # server sidecar endpoints and counters
  curl http://127.0.0.1:16000/config                              # effective config

A light load (20 req/s) is running. Ctrl-C stops everything.
`);
  const status = setInterval(() => process.stdout.write(`  load: ${sent} requests, ${failed} failed\n`), 10_000);

  const stop = async (): Promise<void> => {
    clearInterval(load);
    clearInterval(status);
    process.stdout.write('\nstopping...\n');
    await Promise.all(children.map((c) => new Promise<void>((resolve) => {
      if (c.exitCode !== null) return resolve();
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
    })));
    for (const s of servers) s.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  for (const c of children) c.kill('SIGKILL');
  process.exit(1);
});
