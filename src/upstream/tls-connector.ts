// The TLS connector: upstream connections over TLS (verified against a CA bundle or the system roots, SNI, optional
// client certificate, ALPN, SPIFFE identity check), for the HTTP/1.1 pool, HTTP/2 sessions and health checks alike.
// Reloaded files give new connections a new secure context; open ones keep theirs.
import net from 'node:net';
import tls from 'node:tls';
import type { ClusterTlsConfig } from '../config/schema.js';
import { systemClock } from '../core/clock.js';
import { LogThrottle } from '../observability/log-throttle.js';
import { matchesAny, spiffeIdOf } from '../security/identity.js';
import { setUpstreamIdentity } from '../security/transport.js';
import { describeTlsFailure, IDENTITY_MISMATCH, isTlsError, tlsFailureReason } from '../security/tls-errors.js';
import { readPem, TlsMaterial, type TlsEnv } from '../security/tls-material.js';
import { withConnectTimeout, type Connector } from './connector.js';

export function loadClientContext(cfg: ClusterTlsConfig): tls.SecureContext {
  const options: tls.SecureContextOptions = { minVersion: cfg.min_version, ciphers: cfg.ciphers };
  if (cfg.ca !== undefined) options.ca = readPem(cfg.ca, 'ca');
  if (cfg.cert !== undefined && cfg.key !== undefined) {
    options.cert = readPem(cfg.cert, 'certificate');
    options.key = readPem(cfg.key, 'key');
  }
  try {
    return tls.createSecureContext(options);
  } catch (err) {
    const msg = (err as Error).message;
    throw new Error(/mismatch/i.test(msg) ? `key file ${cfg.key} does not belong to certificate ${cfg.cert}` : `cluster TLS files: ${msg}`);
  }
}

export const clientFiles = (cfg: ClusterTlsConfig): { watched: string[]; certificates: string[] } => ({
  watched: [cfg.ca, cfg.cert, cfg.key].filter((f): f is string => f !== undefined),
  certificates: cfg.cert !== undefined ? [cfg.cert] : [],
});

export class TlsClient {
  readonly connector: Connector;
  readonly #material: TlsMaterial<tls.SecureContext>;

  /** `alpn`: what to offer the upstream (['h2'] for HTTP/2, ['http/1.1'] otherwise). Throws on unreadable files. */
  constructor(cluster: string, cfg: ClusterTlsConfig, alpn: readonly string[], env: TlsEnv) {
    this.#material = new TlsMaterial(`cluster:${cluster}`, clientFiles(cfg), () => loadClientContext(cfg), env);
    const throttle = new LogThrottle(systemClock, 10_000);
    const expected = cfg.expected_identities;
    const checkServerIdentity = expected
      ? (_host: string, cert: tls.PeerCertificate): Error | undefined => {
          const id = spiffeIdOf(cert.subjectaltname);
          if (id !== undefined && matchesAny(id, expected)) return undefined;
          return Object.assign(new Error(`upstream identity ${id ?? '(no SPIFFE ID)'} is not one of ${expected.join(', ')}`), { code: IDENTITY_MISMATCH });
        }
      : undefined;
    const onFailure = (err: unknown, address: string): void => {
      const reason = tlsFailureReason(err);
      env.metrics.tlsHandshakeFailures.get({ cluster, reason }).inc();
      const held = throttle.take();
      if (held !== undefined) env.logger.warn({ cluster, endpoint: address, reason, held_back: held }, `upstream TLS refused: ${describeTlsFailure(err, reason)}`);
    };
    const ALPNProtocols = [...alpn];
    this.connector = (target, options) => {
      const servername = cfg.sni ?? (net.isIP(target.host) ? undefined : target.host);
      const socket = tls.connect({
        host: target.host,
        port: target.port,
        secureContext: this.#material.current,
        ALPNProtocols,
        rejectUnauthorized: true,
        ...(servername !== undefined ? { servername } : {}),
        ...(checkServerIdentity ? { checkServerIdentity } : {}),
      });
      socket.setNoDelay(true);
      let secure = false;
      socket.once('secureConnect', () => {
        secure = true;
        // rejectUnauthorized: a connection that got here has a verified certificate; its identity is logged per request.
        setUpstreamIdentity(socket, spiffeIdOf(socket.getPeerCertificate().subjectaltname));
      });
      socket.once('error', (err) => {
        if (!secure && isTlsError(err)) onFailure(err, target.address);
      });
      return withConnectTimeout(socket, target, options.timeout);
    };
  }

  close(): void {
    this.#material.close();
  }
}

