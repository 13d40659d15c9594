// A stand-in app for the examples: answers every request with its name and what it received (method, path,
// headers), so the headers the sidecar adds (x-request-id, X-Forwarded-*, Via) can be seen.
// Usage: node examples/echo-upstream.mjs NAME PORT
import http from 'node:http';

const [name = 'app', port = '8080'] = process.argv.slice(2);
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const body = `${JSON.stringify({ app: name, method: req.method, path: req.url, headers: req.headers }, null, 2)}\n`;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(Number(port), '127.0.0.1', () => process.stderr.write(`${name} listening on 127.0.0.1:${port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
