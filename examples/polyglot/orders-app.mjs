// The Node.js app behind sidecar B: plain node:http, JSON in and out, no mesh code. POST /orders answers an Order.
// Usage: node examples/polyglot/orders-app.mjs PORT
import http from 'node:http';

const port = Number(process.argv[2] ?? 8080);
http
  .createServer((req, res) => {
    if (req.method === 'GET') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('orders app\n');
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => {
      let order;
      try {
        order = JSON.parse(Buffer.concat(parts).toString('utf8'));
      } catch {
        return void res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"not JSON"}');
      }
      const items = order.items ?? [];
      const total = items.reduce((s, it) => s + (it.quantity ?? 0) * Number(it.unitPrice?.units ?? 0), 0);
      const answer = { id: 'order-42', customerId: order.customerId, status: 'PAID', items, total: { currency: 'EUR', units: String(total) }, shipTo: order.shipTo, createdAt: '2026-12-02T11:00:00Z', labels: { channel: 'web' } };
      res.writeHead(200, { 'content-type': 'application/json', 'x-seen-content-type': String(req.headers['content-type']) });
      res.end(JSON.stringify(answer));
    });
  })
  .listen(port, '127.0.0.1');
