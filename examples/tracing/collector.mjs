// A stand-in for an OpenTelemetry Collector in this example: accepts OTLP/HTTP export requests on /v1/traces and
// counts them; GET / answers how many came, and of which content type.
// Usage: node examples/tracing/collector.mjs PORT
import http from 'node:http';

const [port = '4318'] = process.argv.slice(2);
let exports = 0;
let bytes = 0;
const types = new Set();
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'POST' && req.url === '/v1/traces') {
      exports++;
      bytes += Buffer.concat(chunks).length;
      types.add(req.headers['content-type']);
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`exports: ${exports}, bytes: ${bytes}, content-type: ${[...types].join(' ') || '-'}\n`);
  });
});
server.listen(Number(port), '127.0.0.1', () => process.stderr.write(`collector listening on 127.0.0.1:${port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
