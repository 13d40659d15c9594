// Loads the TLS listener and TLS upstream code only when a config has TLS: a plaintext sidecar never holds it in memory.
import type { Config } from '../config/schema.js';
import type { TlsFront } from '../listener/tls.js';
import type { TlsClient } from '../upstream/tls-connector.js';

/** The TLS classes, handed to the listeners and the upstream registry once loaded. */
export interface TlsCode {
  readonly TlsFront: typeof TlsFront;
  readonly TlsClient: typeof TlsClient;
}

/** Some listener terminates TLS or some cluster speaks TLS to its endpoints. */
export const usesTls = (config: Config): boolean => config.listeners.some((l) => l.tls !== undefined) || config.clusters.some((c) => c.tls !== undefined);

export async function loadTlsCode(): Promise<TlsCode> {
  const [front, client] = await Promise.all([import('../listener/tls.js'), import('../upstream/tls-connector.js')]);
  return { TlsFront: front.TlsFront, TlsClient: client.TlsClient };
}
