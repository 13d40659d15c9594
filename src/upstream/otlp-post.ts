// The OTLP/HTTP transport of the tracing filter's exporter: one POST of a protobuf batch with a timeout over a
// keep-alive agent of its own (never the data path's pools), plain or TLS by the URL's scheme (the system's trust
// store verifies the collector). A failure says why, for the dropped-spans counter.
import http from 'node:http';
import https from 'node:https';
import { ExportFailure, type ExportTransport } from '../filters/tracing/exporter.js';

export function otlpHttpTransport(endpoint: string, headers: Readonly<Record<string, string>>, timeoutMs: number): ExportTransport {
  const url = new URL(endpoint);
  const tls = url.protocol === 'https:';
  const client = tls ? https : http;
  const agent = tls ? new https.Agent({ keepAlive: true, maxSockets: 2 }) : new http.Agent({ keepAlive: true, maxSockets: 2 });
  const base = { ...headers, 'content-type': 'application/x-protobuf' };
  return (body) =>
    new Promise<void>((resolve, reject) => {
      let done = false;
      const fail = (reason: ExportFailure['reason'], message: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        req.destroy();
        reject(new ExportFailure(reason, message));
      };
      const req = client.request(
        { agent, method: 'POST', hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || (tls ? 443 : 80), path: `${url.pathname}${url.search}`, headers: { ...base, 'content-length': body.byteLength } },
        (res) => {
          res.resume();
          res.once('end', () => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            const s = res.statusCode ?? 0;
            if (s >= 200 && s < 300) resolve();
            else reject(new ExportFailure('rejected', `collector answered ${s}`));
          });
          res.once('error', (e) => fail('unreachable', e.message));
        },
      );
      const timer = setTimeout(() => fail('timeout', `export took over ${timeoutMs} ms`), timeoutMs);
      timer.unref();
      req.once('error', (e) => {
        clearTimeout(timer);
        fail('unreachable', e.message);
      });
      req.end(body);
    });
}
