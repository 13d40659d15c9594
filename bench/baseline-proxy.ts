// The Node baseline: the minimal reverse proxy most people would write with node:http and an undici Pool.
import http from 'node:http';
import { once } from 'node:events';
import { Pool } from 'undici';

const [, , listenPort = '18100', upstream = '127.0.0.1:18080'] = process.argv;
const pool = new Pool(`http://${upstream}`, { connections: 128 });

http
  .createServer(async (req, res) => {
    try {
      const up = await pool.request({
        path: req.url ?? '/',
        method: req.method as 'GET',
        headers: req.headers,
        body: req.method === 'GET' || req.method === 'HEAD' ? null : req,
      });
      res.writeHead(up.statusCode, up.headers as http.OutgoingHttpHeaders);
      for await (const chunk of up.body) {
        if (!res.write(chunk)) await once(res, 'drain');
      }
      res.end();
    } catch {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    }
  })
  .listen(Number(listenPort), '127.0.0.1', () => process.stdout.write(`ready ${listenPort}\n`));
