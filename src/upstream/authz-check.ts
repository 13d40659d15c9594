// The ext_authz filter's check on the wire (a transport concern, so it lives here rather than in the pure filters
// folder): one HTTP(S) request per check, with a keep-alive agent of its own and a timeout over the whole exchange.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

/** The TLS settings of an https:// check (the ext_authz filter's `tls`). */
export interface CheckTls {
  readonly ca?: string | undefined;
  readonly sni?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
}

export type CheckFn = (url: string, method: string, headers: Record<string, string>, timeoutMs: number) => Promise<{ status: number; headers: Headers }>;

/** Idle keep-alive connections to the service close after this (also those of a retired config snapshot). */
const IDLE_SOCKET_MS = 15_000;

/**
 * The check over node:http or node:https with a keep-alive agent of the filter's own: for https, verified against
 * tls.ca (or the system roots), with tls.cert/key as a client certificate and tls.sni as the server name. The files
 * are read when the filter is built (each config snapshot), so a reload picks up a rotated CA. No redirects followed.
 */
export function httpCheck(uri: string, tls: CheckTls | undefined): CheckFn {
  const secure = uri.startsWith('https:');
  const agent = secure
    ? new https.Agent({
        keepAlive: true,
        timeout: IDLE_SOCKET_MS,
        ...(tls?.ca !== undefined ? { ca: readFileSync(tls.ca) } : {}),
        ...(tls?.cert !== undefined ? { cert: readFileSync(tls.cert), key: readFileSync(tls.key!) } : {}),
        ...(tls?.sni !== undefined ? { servername: tls.sni } : {}),
      })
    : new http.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS });
  const send = secure ? https.request : http.request;
  return (url, method, headers, timeoutMs) =>
    new Promise((resolve, reject) => {
      const req = send(url, { method, headers, agent }, (res) => {
        res.resume(); // the answer is its status and headers; a body is read off and dropped
        const h = new Headers();
        const raw = res.rawHeaders;
        for (let i = 0; i < raw.length; i += 2) {
          try {
            h.append(raw[i]!, raw[i + 1]!);
          } catch {
            // a field Headers will not hold (node:http's parser is laxer): left out, never thrown out of this callback
          }
        }
        res.once('end', () => clearTimeout(timer));
        resolve({ status: res.statusCode ?? 0, headers: h });
      });
      const timer = setTimeout(() => {
        const e = new Error(`no answer in ${timeoutMs}ms`);
        e.name = 'TimeoutError';
        req.destroy(e);
      }, timeoutMs);
      req.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      req.end();
    });
}
