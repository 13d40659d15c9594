// Active health checks: one timer per endpoint sends a GET probe with plain node:http and reports pass/fail.
import http from 'node:http';
import { nextIntervalMs } from '../policies/health/health-state.js';
import { connectTarget, tcpConnector, type ConnectTarget, type Connector } from '../upstream/connector.js';

export interface ProbeSettings {
  readonly path: string;
  readonly intervalMs: number;
  /** Ratio (0..1) of interval added at random to each wait. */
  readonly jitterRatio: number;
  readonly timeoutMs: number;
  /** Statuses that pass, as numbers or inclusive "200-399" ranges. */
  readonly expectedStatuses: readonly (number | string)[];
  readonly host?: string | undefined;
}

/** A lookup table of passing statuses (index = status). */
export function statusMatcher(expected: readonly (number | string)[]): (status: number) => boolean {
  const table = new Uint8Array(600);
  for (const e of expected) {
    if (typeof e === 'number') table[e] = 1;
    else {
      const [lo, hi] = e.split('-').map(Number) as [number, number];
      for (let s = Math.max(100, lo); s <= Math.min(599, hi); s++) table[s] = 1;
    }
  }
  return (status) => status >= 0 && status < 600 && table[status] === 1;
}

/** "host:port" or "[v6]:port" -> parts (host without brackets). */
export function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  let host = address.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(address.slice(i + 1)) };
}

export class HealthChecker {
  readonly #settings: ProbeSettings;
  readonly #targets: readonly { target: ConnectTarget; hostHeader: string }[];
  readonly #connector: Connector;
  readonly #onResult: (endpoint: number, ok: boolean) => void;
  readonly #passes: (status: number) => boolean;
  readonly #timers: (NodeJS.Timeout | undefined)[];
  readonly #inflight: (http.ClientRequest | undefined)[];
  #stopped = false;

  /** `connector`: the same transport the endpoint's pool uses, so a probe connects the way requests do. */
  constructor(addresses: readonly string[], settings: ProbeSettings, onResult: (endpoint: number, ok: boolean) => void, connector: Connector = tcpConnector) {
    this.#settings = settings;
    this.#onResult = onResult;
    this.#connector = connector;
    this.#passes = statusMatcher(settings.expectedStatuses);
    this.#targets = addresses.map((a) => ({ target: connectTarget(a), hostHeader: settings.host ?? a }));
    this.#timers = addresses.map(() => undefined);
    this.#inflight = addresses.map(() => undefined);
  }

  /** First probes go out at once (spread over the jitter window), then every interval (+ jitter). */
  start(): void {
    const jitterWindow = this.#settings.jitterRatio * this.#settings.intervalMs;
    for (let i = 0; i < this.#targets.length; i++) this.#schedule(i, Math.random() * Math.min(jitterWindow, 50));
  }

  stop(): void {
    this.#stopped = true;
    for (let i = 0; i < this.#targets.length; i++) {
      clearTimeout(this.#timers[i]);
      this.#timers[i] = undefined;
      this.#inflight[i]?.destroy();
      this.#inflight[i] = undefined;
    }
  }

  #schedule(i: number, delayMs: number): void {
    if (this.#stopped) return;
    const t = setTimeout(() => this.#probe(i), delayMs);
    t.unref();
    this.#timers[i] = t;
  }

  #probe(i: number): void {
    if (this.#stopped) return;
    const target = this.#targets[i]!;
    const s = this.#settings;
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.#inflight[i] = undefined;
      if (this.#stopped) return;
      this.#onResult(i, ok);
      this.#schedule(i, nextIntervalMs(s.intervalMs, s.jitterRatio, Math.random));
    };
    const req = http.request(
      {
        host: target.target.host,
        port: target.target.port,
        path: s.path,
        method: 'GET',
        // A connection of its own from the connector (no agent): the probe's timeout also bounds the connect.
        createConnection: () => this.#connector(target.target, { timeout: s.timeoutMs }),
        headers: { host: target.hostHeader, 'user-agent': 'sidecar-health-check', connection: 'close' },
      },
      (res) => {
        const ok = this.#passes(res.statusCode ?? 0);
        res.on('error', () => {});
        res.resume();
        finish(ok);
      },
    );
    req.on('error', () => finish(false));
    req.on('socket', (socket) => socket.unref());
    const timer = setTimeout(() => {
      finish(false);
      req.destroy();
    }, s.timeoutMs);
    timer.unref();
    this.#inflight[i] = req;
    req.end();
  }
}
