// Active health checks: one timer per endpoint (keyed by address) sends a GET probe with plain node:http and reports pass/fail.
import http from 'node:http';
import { nextIntervalMs } from '../policies/health/health-state.js';
import { systemClock, type Clock } from '../core/clock.js';
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

interface ProbeTarget {
  readonly target: ConnectTarget;
  readonly hostHeader: string;
  cancelTimer: (() => void) | undefined;
  inflight: http.ClientRequest | undefined;
}

/** A background timer: unref'd on the system clock (a probe never keeps the process alive), the fake clock's otherwise. */
export function later(clock: Clock, fn: () => void, ms: number): () => void {
  if (clock !== systemClock) return clock.setTimeout(fn, ms);
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
}

/** Probes a changing set of endpoints, keyed by address: adding or removing one leaves the others' schedules alone. */
export class HealthChecker {
  readonly #settings: ProbeSettings;
  readonly #targets = new Map<string, ProbeTarget>();
  readonly #connector: Connector;
  readonly #clock: Clock;
  readonly #onResult: (address: string, ok: boolean) => void;
  readonly #passes: (status: number) => boolean;
  #started = false;
  #stopped = false;

  /** `connector`: the same transport the endpoint's pool uses, so a probe connects the way requests do. */
  constructor(
    addresses: readonly string[],
    settings: ProbeSettings,
    onResult: (address: string, ok: boolean) => void,
    connector: Connector = tcpConnector,
    clock: Clock = systemClock,
  ) {
    this.#settings = settings;
    this.#onResult = onResult;
    this.#connector = connector;
    this.#clock = clock;
    this.#passes = statusMatcher(settings.expectedStatuses);
    for (const a of addresses) this.#targets.set(a, this.#target(a));
  }

  get addresses(): string[] {
    return [...this.#targets.keys()];
  }

  /** First probes go out at once (spread over the jitter window), then every interval (+ jitter). */
  start(): void {
    this.#started = true;
    for (const [address, t] of this.#targets) if (t.cancelTimer === undefined) this.#schedule(address, t, this.#firstDelay());
  }

  /** Starts probing a new endpoint (a probe goes out at once when running). */
  add(address: string): void {
    if (this.#stopped || this.#targets.has(address)) return;
    const t = this.#target(address);
    this.#targets.set(address, t);
    if (this.#started) this.#schedule(address, t, this.#firstDelay());
  }

  /** Stops probing an endpoint that left the cluster; a probe in flight is abandoned and not reported. */
  remove(address: string): void {
    const t = this.#targets.get(address);
    if (t === undefined) return;
    this.#targets.delete(address);
    this.#cancel(t);
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#targets.values()) this.#cancel(t);
  }

  #target(address: string): ProbeTarget {
    return { target: connectTarget(address), hostHeader: this.#settings.host ?? address, cancelTimer: undefined, inflight: undefined };
  }

  #firstDelay(): number {
    return Math.random() * Math.min(this.#settings.jitterRatio * this.#settings.intervalMs, 50);
  }

  #cancel(t: ProbeTarget): void {
    t.cancelTimer?.();
    t.cancelTimer = undefined;
    t.inflight?.destroy();
    t.inflight = undefined;
  }

  #schedule(address: string, t: ProbeTarget, delayMs: number): void {
    if (this.#stopped || this.#targets.get(address) !== t) return;
    t.cancelTimer = later(this.#clock, () => {
      t.cancelTimer = undefined;
      this.#probe(address, t);
    }, delayMs);
  }

  #probe(address: string, t: ProbeTarget): void {
    if (this.#stopped || this.#targets.get(address) !== t) return;
    const s = this.#settings;
    let done = false;
    let cancelTimeout: (() => void) | undefined;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      cancelTimeout?.();
      t.inflight = undefined;
      if (this.#stopped || this.#targets.get(address) !== t) return;
      this.#onResult(address, ok);
      this.#schedule(address, t, nextIntervalMs(s.intervalMs, s.jitterRatio, Math.random));
    };
    const req = http.request(
      {
        host: t.target.host,
        port: t.target.port,
        path: s.path,
        method: 'GET',
        // A connection of its own from the connector (no agent): the probe's timeout also bounds the connect.
        createConnection: () => this.#connector(t.target, { timeout: s.timeoutMs }),
        headers: { host: t.hostHeader, 'user-agent': 'sidecar-health-check', connection: 'close' },
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
    cancelTimeout = later(this.#clock, () => {
      finish(false);
      req.destroy();
    }, s.timeoutMs);
    t.inflight = req;
    req.end();
  }
}
