// Research prototype, not product code and not run by tests: how cheap can a proxy hop be in Node when it skips
// node:http and undici and drives Node's own llhttp binding (the parser node:http uses) on raw sockets?
// GET only, Content-Length bodies, no pipelining, no error handling: enough to measure, nothing more.
// Run: taskset -c 0 node bench/research/raw-llhttp-proxy.cjs 18200 127.0.0.1:18080, then wrk against :18200.
// Measured 2026-11-29 (wrk -t1 -c50, proxies pinned to one core, CPU per request from /proc/PID/task/*/schedstat,
// 2 fresh processes x 3 rounds each, twice): this 24.7 / 24.8 µs (40,000 req/s), node:http + undici baseline
// 46.7 / 49.0 µs (22,000 req/s), sidecar 52.6 / 54.2 µs (19,000 req/s). See docs/adr/0001-hot-path.md.
const net = require('node:net');
const { HTTPParser, methods } = require('_http_common');
const [, , listenPort = '18200', up = '127.0.0.1:18080'] = process.argv;
const [uhost, uport] = up.split(':');
const idle = [];
function upstreamConn() {
  const c = idle.pop();
  if (c) return c;
  const socket = net.connect({ host: uhost, port: Number(uport), noDelay: true });
  const conn = { socket, parser: new HTTPParser(), done: null, status: 0, headers: null, chunks: [] };
  conn.parser.initialize(HTTPParser.RESPONSE, {});
  conn.parser[HTTPParser.kOnHeadersComplete] = (maj, min, headers, method, url, status, msg) => { conn.status = status; conn.msg = msg; conn.headers = headers; };
  conn.parser[HTTPParser.kOnBody] = (b) => { conn.chunks.push(Buffer.from(b)); };
  conn.parser[HTTPParser.kOnMessageComplete] = () => {
    const done = conn.done; conn.done = null;
    const body = conn.chunks.length === 1 ? conn.chunks[0] : Buffer.concat(conn.chunks); conn.chunks = [];
    idle.push(conn);
    done(conn.status, conn.msg, conn.headers, body);
  };
  socket.on('data', (d) => conn.parser.execute(d));
  socket.on('error', () => {});
  return conn;
}
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-connection', 'trailer']);
net.createServer({ noDelay: true }, (socket) => {
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.REQUEST, {});
  const peer = socket.remoteAddress;
  parser[HTTPParser.kOnHeadersComplete] = (maj, min, headers, method, url) => {
    let head = `${methods[method]} ${url} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) { const n = headers[i].toLowerCase(); if (!HOP.has(n)) head += `${headers[i]}: ${headers[i + 1]}\r\n`; }
    head += `x-forwarded-for: ${peer}\r\n\r\n`;
    const conn = upstreamConn();
    conn.done = (status, msg, h, body) => {
      let out = `HTTP/1.1 ${status} ${msg}\r\n`;
      for (let i = 0; i < h.length; i += 2) { const n = h[i].toLowerCase(); if (!HOP.has(n)) out += `${h[i]}: ${h[i + 1]}\r\n`; }
      out += 'connection: keep-alive\r\n\r\n';
      socket.cork(); socket.write(out, 'latin1'); socket.write(body); socket.uncork();
    };
    conn.socket.write(head, 'latin1');
  };
  socket.on('data', (d) => parser.execute(d));
  socket.on('error', () => {});
}).listen(Number(listenPort), '127.0.0.1');
