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
