// TLS in front of a listener: tells TLS from plaintext by the first byte, terminates TLS (ALPN h2 / http/1.1, SNI
// among several certificates, optional client certificates), refuses bad peers with a counted, throttled reason,
// and swaps in reloaded certificate files for new handshakes while open connections carry on.
import { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { ListenerTlsConfig } from '../config/schema.js';
import { systemClock } from '../core/clock.js';
import { LogThrottle } from '../observability/log-throttle.js';
import { matchesAny, spiffeIdOf } from '../security/identity.js';
import { describeTlsFailure, tlsFailureReason, type TlsFailureReason } from '../security/tls-errors.js';
import { firstCertificate, readPem, TlsMaterial, type TlsEnv } from '../security/tls-material.js';
import { setTransport, type DownstreamTransport } from '../security/transport.js';

const HANDSHAKE = 0x16;
const NOT_TLS_BODY = 'this port expects TLS (use https://)\n';
const NOT_TLS_RESPONSE =
  'HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nconnection: close\r\nx-sidecar-flag: DPE\r\n' +
  `x-sidecar-error: this port expects TLS\r\ncontent-length: ${NOT_TLS_BODY.length}\r\n\r\n${NOT_TLS_BODY}`;

interface Named {
  readonly names: readonly string[];
  readonly context: tls.SecureContext;
}

interface ServerMaterial {
  /** Options of the default certificate (server.setSecureContext takes options, not a context). */
  readonly options: tls.SecureContextOptions;
  readonly exact: ReadonlyMap<string, tls.SecureContext>;
  /** "*.example.com" entries by suffix ".example.com". */
  readonly wildcard: ReadonlyMap<string, tls.SecureContext>;
}

export interface TlsFrontHandlers {
  /** A permissive-mode plaintext connection, its first bytes unread again. */
  plaintext(socket: Socket): void;
  /** A finished, accepted TLS connection. */
  secure(socket: tls.TLSSocket): void;
}

/** DNS names of a certificate's SAN (what it serves when an sni entry names none). */
const dnsNames = (cert: X509Certificate): string[] =>
  (cert.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((p) => p.startsWith('DNS:'))
    .map((p) => p.slice(4).toLowerCase());

/** Loads a cert/key pair into context options; a key that does not belong to the certificate says so. */
function pairOptions(certFile: string, keyFile: string, base: tls.SecureContextOptions): { options: tls.SecureContextOptions; cert: X509Certificate } {
  const cert = readPem(certFile, 'certificate');
  const key = readPem(keyFile, 'key');
  const x = firstCertificate(cert, certFile);
  const options = { ...base, cert, key };
  try {
    tls.createSecureContext(options);
  } catch (err) {
    const msg = (err as Error).message;
    throw new Error(/mismatch/i.test(msg) ? `key file ${keyFile} does not belong to certificate ${certFile}` : `certificate ${certFile} / key ${keyFile}: ${msg}`);
  }
  return { options, cert: x };
}

export function loadServerMaterial(cfg: ListenerTlsConfig): ServerMaterial {
  const base: tls.SecureContextOptions = { minVersion: cfg.min_version, ciphers: cfg.ciphers, honorCipherOrder: true };
  if (cfg.client_ca !== undefined) base.ca = readPem(cfg.client_ca, 'client_ca');
  const main = pairOptions(cfg.cert, cfg.key, base);
  const exact = new Map<string, tls.SecureContext>();
  const wildcard = new Map<string, tls.SecureContext>();
  const named: Named[] = cfg.sni.map((s) => {
    const pair = pairOptions(s.cert, s.key, base);
    return { names: s.server_names ?? dnsNames(pair.cert), context: tls.createSecureContext(pair.options) };
  });
  for (const n of named) {
    for (const name of n.names) {
      const lower = name.toLowerCase();
      if (lower.startsWith('*.')) {
        if (!wildcard.has(lower.slice(1))) wildcard.set(lower.slice(1), n.context);
      } else if (!exact.has(lower)) exact.set(lower, n.context);
    }
  }
  return { options: main.options, exact, wildcard };
}

/** Files to watch and certificates to track, for a listener's TLS config. */
export const serverFiles = (cfg: ListenerTlsConfig): { watched: string[]; certificates: string[] } => ({
  watched: [cfg.cert, cfg.key, ...(cfg.client_ca ? [cfg.client_ca] : []), ...cfg.sni.flatMap((s) => [s.cert, s.key])],
  certificates: [cfg.cert, ...cfg.sni.map((s) => s.cert)],
});

/** The context for an SNI name: exact first, then a wildcard for exactly one more label; undefined: the default. */
function pick(m: ServerMaterial, servername: string): tls.SecureContext | undefined {
  const name = servername.toLowerCase();
  const exact = m.exact.get(name);
  if (exact) return exact;
  const dot = name.indexOf('.');
  return dot > 0 ? m.wildcard.get(name.slice(dot)) : undefined;
}

export class TlsFront {
  readonly #listener: string;
  readonly #cfg: ListenerTlsConfig;
  readonly #env: TlsEnv;
  readonly #material: TlsMaterial<ServerMaterial>;
  readonly #server: tls.Server;
  readonly #handlers: TlsFrontHandlers;
  readonly #throttle = new LogThrottle(systemClock, 10_000);

  /** Throws with the file problem when the certificate files cannot be loaded. */
  constructor(listener: string, cfg: ListenerTlsConfig, env: TlsEnv, handlers: TlsFrontHandlers) {
    this.#listener = listener;
    this.#cfg = cfg;
    this.#env = env;
    this.#handlers = handlers;
    this.#material = new TlsMaterial(`listener:${listener}`, serverFiles(cfg), () => loadServerMaterial(cfg), env, cfg.expiry_warning);
    const m = this.#material.current;
    this.#server = tls.createServer({
      ...m.options,
      ALPNProtocols: ['h2', 'http/1.1'],
      SNICallback: (servername, cb) => cb(null, pick(this.#material.current, servername)),
      requestCert: cfg.client_ca !== undefined,
      // Checked in 'secureConnection', so a refusal is counted and logged with its reason.
      rejectUnauthorized: false,
      handshakeTimeout: cfg.handshake_timeout,
    });
    this.#material.onSwap = (next) => this.#server.setSecureContext(next.options);
    this.#server.on('secureConnection', (s: tls.TLSSocket) => this.#onSecure(s));
    this.#server.on('tlsClientError', (err: Error, s: tls.TLSSocket) => {
      this.#refuse(tlsFailureReason(err), describeTlsFailure(err), s.remoteAddress);
      s.destroy();
    });
  }

  /** Takes an accepted TCP connection. */
  accept(socket: Socket): void {
    socket.setTimeout(this.#cfg.handshake_timeout, () => {
      this.#refuse('timeout', 'no bytes before handshake_timeout', socket.remoteAddress);
      socket.destroy();
    });
    socket.once('data', (chunk: Buffer) => {
      socket.pause();
      socket.unshift(chunk);
      if (chunk[0] === HANDSHAKE) {
        // tls.Server's handshake timer takes over; it reads the unshifted bytes when it wraps the socket.
        socket.setTimeout(0);
        this.#server.emit('connection', socket);
        return;
      }
      if (this.#cfg.mode === 'permissive') {
        socket.setTimeout(0);
        this.#env.metrics.downstreamTransport.get({ listener: this.#listener, transport: 'plaintext' }).inc();
        setTransport(socket, { scheme: 'http', peerIdentity: undefined, identityHeader: this.#cfg.forward_identity_header });
        this.#handlers.plaintext(socket);
        socket.resume();
        return;
      }
      this.#refuse('not_tls', 'plaintext sent to a TLS port', socket.remoteAddress);
      socket.end(NOT_TLS_RESPONSE);
      socket.setTimeout(2000, () => socket.destroy());
    });
  }

  #onSecure(s: tls.TLSSocket): void {
    let peerIdentity: string | undefined;
    if (this.#cfg.client_ca !== undefined) {
      const peer = s.getPeerCertificate();
      const presented = peer !== null && Object.keys(peer).length > 0;
      if (presented && !s.authorized) {
        const err = { code: String(s.authorizationError) };
        this.#refuse(tlsFailureReason(err), `client certificate refused: ${describeTlsFailure(err)}`, s.remoteAddress);
        s.destroy();
        return;
      }
      if (!presented && this.#cfg.require_client_cert) {
        this.#refuse('no_client_cert', 'client presented no certificate and require_client_cert is on', s.remoteAddress);
        s.destroy();
        return;
      }
      if (presented) peerIdentity = spiffeIdOf(peer.subjectaltname);
      const allowed = this.#cfg.allowed_identities;
      if (allowed !== undefined && (peerIdentity === undefined || !matchesAny(peerIdentity, allowed))) {
        this.#refuse('identity_mismatch', `client identity ${peerIdentity ?? '(none)'} is not one of ${allowed.join(', ')}`, s.remoteAddress);
        s.destroy();
        return;
      }
    }
    const transport: DownstreamTransport = { scheme: 'https', peerIdentity, identityHeader: this.#cfg.forward_identity_header };
    setTransport(s, transport);
    const kind = peerIdentity !== undefined || (this.#cfg.client_ca !== undefined && s.authorized) ? 'mtls' : 'tls';
    this.#env.metrics.downstreamTransport.get({ listener: this.#listener, transport: kind }).inc();
    this.#handlers.secure(s);
  }

  #refuse(reason: TlsFailureReason, message: string, peer: string | undefined): void {
    this.#env.metrics.tlsHandshakeFailures.get({ listener: this.#listener, reason }).inc();
    const held = this.#throttle.take();
    if (held !== undefined) this.#env.logger.warn({ listener: this.#listener, peer, reason, held_back: held }, `TLS connection refused: ${message}`);
  }

  close(): void {
    this.#material.close();
  }
}
