// Test helper: HTTPS and HTTP/2-over-TLS upstreams that count TLS handshakes and report the client's certificate.
import http2 from 'node:http2';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Leaf } from './certs.js';

export interface TlsUpstream {
  readonly address: string;
  readonly port: number;
  /** Finished TLS handshakes ('secureConnection'). */
  handshakes(): number;
  /** Headers of the requests received, in order. */
  readonly seen: Array<Record<string, string | string[] | undefined>>;
  /** Request paths, in order. */
  readonly paths: string[];
  /** Serial number and URI SAN of the client certificate of each handshake that presented one. */
  readonly clientCerts: Array<{ serial: string; san: string | undefined }>;
  close(): Promise<void>;
}

/** `clientCa`: ask for (and require) client certificates signed by this CA. `h2`: HTTP/2 only (ALPN h2). */
export async function startTlsUpstream(leaf: Leaf, opts: { clientCa?: string; h2?: boolean } = {}): Promise<TlsUpstream> {
  const tlsOpts = {
    cert: leaf.certPem,
    key: leaf.keyPem,
    ...(opts.clientCa ? { ca: readFileSync(opts.clientCa), requestCert: true, rejectUnauthorized: true } : {}),
  };
  const seen: TlsUpstream['seen'] = [];
  const paths: string[] = [];
  const clientCerts: TlsUpstream['clientCerts'] = [];
  let handshakes = 0;
  const answer = (headers: Record<string, string | string[] | undefined>, url: string): string => {
    seen.push(headers);
    paths.push(url);
    return JSON.stringify({ ok: true, identity: headers['x-peer-identity'] ?? null });
  };
  const server = opts.h2
    ? http2.createSecureServer(tlsOpts, (req, res) => {
        req.resume();
        req.on('end', () => res.end(answer(req.headers, req.url ?? '')));
      })
    : https.createServer({ ...tlsOpts, keepAliveTimeout: 30_000 }, (req, res) => {
        req.resume();
        req.on('end', () => res.end(answer(req.headers, req.url ?? '')));
      });
  server.on('secureConnection', (s: TLSSocket) => {
    handshakes++;
    const c = s.getPeerCertificate();
    if (c && c.serialNumber) clientCerts.push({ serial: c.serialNumber, san: c.subjectaltname });
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    port,
    handshakes: () => handshakes,
    seen,
    paths,
    clientCerts,
    close: () =>
      new Promise<void>((resolve) => {
        if ('closeAllConnections' in server) server.closeAllConnections();
        server.close(() => resolve());
        setTimeout(resolve, 1000).unref();
      }),
  };
}
