// The transport seam: the one place every client of an upstream endpoint (HTTP/1.1 pool, HTTP/2 sessions, health
// checks) gets its socket from, with the connect timeout. Plain TCP today; a TLS connector plugs in here.
import net from 'node:net';
import tls from 'node:tls';
import { connectTimeoutError } from './errors.js';

/** An endpoint to connect to. */
export interface ConnectTarget {
  /** host:port as configured ("[::1]:8080" for IPv6), for messages. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
}

export interface ConnectOptions {
  /** Milliseconds for the connection to become usable; 0: no limit. */
  readonly timeout: number;
}

/**
 * Opens a connection to `target`. Returns at once with a socket that is connecting: it emits readyEvent() once usable,
 * or is destroyed, with the OS error (ECONNREFUSED...) or, when `timeout` passes first, with a ProxyError
 * UF 504 (outcome not-sent, code connect-timeout). Clients need nothing else from it, so a TLS connector (ready on
 * its handshake) and a test connector that never connects fit the same slot.
 */
export type Connector = (target: ConnectTarget, options: ConnectOptions) => net.Socket;

/** The event that says a connector's socket is usable: 'connect', or for TLS the end of the handshake. */
export const readyEvent = (socket: net.Socket): 'connect' | 'secureConnect' => (socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect');

/** Plain TCP, Nagle off (requests are written whole, and latency matters more than packet count). */
export const tcpConnector: Connector = (target, options) =>
  withConnectTimeout(net.connect({ host: target.host, port: target.port, noDelay: true }), target, options.timeout);

/**
 * Destroys `socket` with the typed connect-timeout error unless it connects within `ms`. A plain timer rather than
 * socket.setTimeout, which the clients own for idle timeouts once connected.
 */
export function withConnectTimeout(socket: net.Socket, target: ConnectTarget, ms: number): net.Socket {
  if (!(ms > 0) || !socket.connecting) return socket;
  const timer = setTimeout(() => socket.destroy(connectTimeoutError(target.address, ms)), ms);
  const ready = readyEvent(socket);
  const clear = (): void => {
    clearTimeout(timer);
    socket.off(ready, clear);
    socket.off('close', clear);
  };
  socket.once(ready, clear);
  socket.once('close', clear);
  return socket;
}

/** "host:port" or "[v6]:port" -> a connect target (host without brackets). */
export function connectTarget(address: string): ConnectTarget {
  const colon = address.lastIndexOf(':');
  let host = address.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { address, host, port: Number(address.slice(colon + 1)) };
}
