// The admin server: health, effective config, cluster state and Prometheus metrics. Loopback unless configured.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.js';
import { formatDuration } from '../config/units.js';

export interface AdminSource {
  /** Undefined when ready to take traffic; otherwise why not (draining, a listener not bound, ...). */
  readiness(): string | undefined;
  config(): Config;
  configSource(): string;
  clusters(): unknown;
  metrics(): string;
}

export class AdminServer {
  readonly #server: http.Server;

  constructor(source: AdminSource) {
    this.#server = http.createServer((req, res) => {
      const url = (req.url ?? '/').split('?')[0];
      const json = (status: number, body: unknown): void => {
        const text = `${JSON.stringify(body, null, 2)}\n`;
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      const text = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
        res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, 'method not allowed\n');
      switch (url) {
        case '/ready': {
          const why = source.readiness();
          return why === undefined ? text(200, 'ready\n') : text(503, `not ready: ${why}\n`);
        }
        case '/live':
          return text(200, 'live\n');
        case '/config':
          return json(200, { source: source.configSource(), config: redact(source.config()) });
        case '/clusters':
          return json(200, source.clusters());
        case '/metrics':
          return text(200, source.metrics(), 'text/plain; version=0.0.4; charset=utf-8');
        case '/':
          return text(200, 'sidecar admin: /ready /live /config /clusters /metrics\n');
        default:
          return text(404, 'not found\n');
      }
    });
  }

  listen(address: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, address, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  get port(): number {
    return (this.#server.address() as AddressInfo | null)?.port ?? 0;
  }

  /** Gives up the port at once so a replacement can bind it; `listen` takes it back if the reload fails. */
  async stopAccepting(): Promise<void> {
    this.#server.close();
    // The handle closes on the next turn of the loop; only then is the port free to bind again.
    await new Promise((r) => setImmediate(r));
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}

/** Keys (and header names in header edits) whose values are credentials. */
const SECRET_KEY = /(secret|password|passwd|token|private[-_]?key|api[-_]?key|credential|authorization|cookie|session)/i;

/** The config with secret-looking values replaced, and durations shown as written units. */
export function redact(value: unknown, key = ''): unknown {
  if (SECRET_KEY.test(key) && value !== undefined && value !== null) return '[redacted]';
  if (Array.isArray(value)) return value.map((v) => redact(v));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redact(v, k);
    return out;
  }
  if (typeof value === 'number' && /(timeout|interval|_time)$/.test(key)) return formatDuration(value);
  return value;
}
