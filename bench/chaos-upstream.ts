// Chaos-run upstream: a tiny node:http server answering 200 with a small body, counting the requests it receives.
// Usage: node dist/bench/chaos-upstream.js <port> [name]
// - GET /__count answers {"name","port","requests","health"} (not counted);
// - GET /healthz answers 200 and counts as a health probe, apart from proxied requests;
// - on SIGTERM it prints the same JSON on stderr as a final line "count {...}" and exits;
// - every proxied request also writes one "." to stdout at once (pipes are synchronous on Linux), so the parent keeps
//   an exact tally even when this process is killed with SIGKILL and never gets to report.
import http from 'node:http';

const port = Number(process.argv[2] ?? 18201);
const name = process.argv[3] ?? `upstream-${port}`;
const BODY = 'hello chaos\n';
let requests = 0;
let health = 0;

const snapshot = (): string => JSON.stringify({ name, port, pid: process.pid, requests, health });

const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  if (req.url === '/__count') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(snapshot());
    return;
  }
  if (req.url === '/healthz') {
    health++;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 3 });
    res.end('ok\n');
    return;
  }
  requests++;
  process.stdout.write('.');
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
  res.end(BODY);
});
server.on('clientError', (_err, socket) => socket.destroy());

process.on('SIGTERM', () => {
  process.stderr.write(`count ${snapshot()}\n`);
  process.exit(0);
});
process.on('SIGINT', () => process.exit(130));
// The parent going away (Ctrl-C, crash) closes our stdin pipe: never outlive it.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();

server.listen(port, '127.0.0.1', () => process.stderr.write(`ready ${name} ${port}\n`));
