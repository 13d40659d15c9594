// Each listener's Via received-by names: process-owned state handed to every snapshot, so they outlive reloads.
import { randomBytes } from 'node:crypto';
import type { RequestContext } from '../core/service.js';

type DownstreamProtocol = RequestContext['downstreamProtocol'];

/** One listener's Via identity. */
export interface ListenerVia {
  /** The received-by name that marks this listener. */
  readonly name: string;
  /** The whole Via entry to add, by the protocol the request came in on. */
  readonly entries: Readonly<Record<DownstreamProtocol, string>>;
  /**
   * For pass-through to hosts outside the mesh: an opaque received-by pseudonym (RFC 9110 7.6.3) that names neither
   * the sidecar nor the listener, yet still lets a request that comes back round be recognised as a loop.
   */
  readonly pseudonym: string;
  readonly pseudonymEntries: Readonly<Record<DownstreamProtocol, string>>;
}

/**
 * The Via names of one process's listeners, made on first use and kept by listener name: a request that loops back
 * after a reload is still recognised. The process id part tells this process from another sidecar on the path.
 */
export class ViaNames {
  readonly #process = `sidecar-${randomBytes(4).toString('hex')}`;
  readonly #byListener = new Map<string, ListenerVia>();

  of(listener: string): ListenerVia {
    let via = this.#byListener.get(listener);
    if (via === undefined) {
      const name = `${this.#process}.${listener}`;
      const pseudonym = randomBytes(4).toString('hex');
      via = {
        name,
        entries: { 'HTTP/1.0': `1.0 ${name}`, 'HTTP/1.1': `1.1 ${name}`, 'HTTP/2': `2 ${name}` },
        pseudonym,
        pseudonymEntries: { 'HTTP/1.0': `1.0 ${pseudonym}`, 'HTTP/1.1': `1.1 ${pseudonym}`, 'HTTP/2': `2 ${pseudonym}` },
      };
      this.#byListener.set(listener, via);
    }
    return via;
  }
}
