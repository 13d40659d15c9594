// What a downstream connection's transport told us (TLS or not, the verified peer identity), attached to the socket
// or HTTP/2 session so the request handlers read it without a lookup table.
import type { HeaderList } from '../core/headers.js';

const TRANSPORT = Symbol('sidecar.transport');

export interface DownstreamTransport {
  readonly scheme: 'http' | 'https';
  /** The verified SPIFFE ID of the client certificate; undefined without one. */
  readonly peerIdentity: string | undefined;
  /** Header that carries the identity to the app (a client's copy is always removed); undefined: none. */
  readonly identityHeader: string | undefined;
}

type Carrier = { [TRANSPORT]?: DownstreamTransport };

/** Read through an HTTP/2 session's socket proxy too (it forwards property reads to the socket). */
export const transportOf = (conn: object): DownstreamTransport | undefined => (conn as Carrier)[TRANSPORT];

export function setTransport(conn: object, t: DownstreamTransport): void {
  (conn as Carrier)[TRANSPORT] = t;
}

/** Removes any client-sent identity header, then sets the verified one. */
export function applyIdentityHeader(headers: HeaderList, t: DownstreamTransport): void {
  if (t.identityHeader === undefined) return;
  headers.remove(t.identityHeader);
  if (t.peerIdentity !== undefined) headers.set(t.identityHeader, t.peerIdentity);
}

const UPSTREAM_IDENTITY = Symbol('sidecar.upstreamIdentity');
type UpstreamCarrier = { [UPSTREAM_IDENTITY]?: string };

/**
 * The verified identity (SPIFFE ID) of an upstream connection's certificate, set once by the TLS connector when the
 * handshake verifies it, so each request on the connection reads it with one property lookup (access log
 * upstream_identity). undefined for plain TCP, or a certificate without a SPIFFE ID.
 */
export const upstreamIdentityOf = (socket: object): string | undefined => (socket as UpstreamCarrier)[UPSTREAM_IDENTITY];

export function setUpstreamIdentity(socket: object, identity: string | undefined): void {
  if (identity !== undefined) (socket as UpstreamCarrier)[UPSTREAM_IDENTITY] = identity;
}
