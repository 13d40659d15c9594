// The DNS source: a name's A/AAAA records (with the cluster's port) or its SRV records (priority level, weight, port),
// resolved on a timer off the request path with a node:dns Resolver; the next lookup follows the answer's TTL, held
// between a floor and a ceiling. A failed or empty lookup keeps the last good set and is reported.
import { Resolver } from 'node:dns/promises';
import type { DiscoveredEndpoint, DiscoverySink, DiscoverySource } from './source.js';

export type DnsRecordType = 'A' | 'AAAA' | 'A_AAAA' | 'SRV';

export interface DnsSourceOptions {
  readonly name: string;
  readonly type: DnsRecordType;
  /** Port of A/AAAA endpoints (SRV records carry their own). */
  readonly port?: number | undefined;
  /** "ip:port" resolvers; absent: the system's (/etc/resolv.conf). */
  readonly servers?: readonly string[] | undefined;
  readonly ttlFloorMs: number;
  readonly ttlCeilingMs: number;
  /** Per-query timeout. */
  readonly timeoutMs: number;
}

/** When to look again: the smallest TTL of the answer (seconds), held in [floor, ceiling] (ms). */
export function nextLookupMs(ttlsSeconds: readonly number[], floorMs: number, ceilingMs: number): number {
  const ttl = ttlsSeconds.length === 0 ? ceilingMs : Math.min(...ttlsSeconds) * 1000;
  return Math.max(floorMs, Math.min(ceilingMs, ttl));
}

/**
 * SRV records to endpoints: every record, its priority kept as the endpoint's priority level (the cluster prefers the
 * best level with an available endpoint and falls back to the next, RFC 2782); weight 0 counts as 1, above 1000 as 1000.
 * An address named at several priorities keeps its best one.
 */
export function srvEndpoints(records: readonly { priority: number; weight: number; port: number; name: string }[], addressesOf: (target: string) => readonly string[]): DiscoveredEndpoint[] {
  const out: DiscoveredEndpoint[] = [];
  for (const r of [...records].sort((a, b) => a.priority - b.priority)) {
    const weight = Math.max(1, Math.min(1000, r.weight));
    for (const ip of addressesOf(r.name)) out.push({ address: `${ip.includes(':') ? `[${ip}]` : ip}:${r.port}`, weight, priority: r.priority });
  }
  return out;
}

interface Answer {
  readonly endpoints: DiscoveredEndpoint[];
  readonly ttls: number[];
}

export class DnsSource implements DiscoverySource {
  readonly name: string;
  readonly #opts: DnsSourceOptions;
  readonly #resolver: Resolver;
  #sink: DiscoverySink | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastDelivered: string | undefined;
  /** Lookups done (tests and /clusters). */
  lookups = 0;
  /** Delay chosen for the next lookup (tests). */
  nextInMs = 0;

  constructor(opts: DnsSourceOptions) {
    this.#opts = opts;
    this.name = `dns:${opts.type === 'SRV' ? 'SRV ' : ''}${opts.name}`;
    this.#resolver = new Resolver({ timeout: opts.timeoutMs, tries: 2 });
    if (opts.servers !== undefined && opts.servers.length > 0) this.#resolver.setServers([...opts.servers]);
  }

  start(sink: DiscoverySink): void {
    this.#sink = sink;
    void this.#lookup();
  }

  stop(): void {
    this.#sink = undefined;
    clearTimeout(this.#timer);
    this.#resolver.cancel();
  }

  async #resolveHost(host: string): Promise<{ address: string; ttl: number }[]> {
    const t = this.#opts.type;
    const v4 = t === 'AAAA' ? Promise.resolve([]) : this.#resolver.resolve4(host, { ttl: true }).catch((err: NodeJS.ErrnoException) => (t === 'A_AAAA' && err.code === 'ENODATA' ? [] : Promise.reject(err)));
    const v6 = t === 'A' ? Promise.resolve([]) : this.#resolver.resolve6(host, { ttl: true }).catch((err: NodeJS.ErrnoException) => (t === 'A_AAAA' && err.code === 'ENODATA' ? [] : Promise.reject(err)));
    const [a, b] = await Promise.all([v4, v6]);
    return [...a, ...b];
  }

  async #query(): Promise<Answer> {
    const o = this.#opts;
    if (o.type !== 'SRV') {
      const records = await this.#resolveHost(o.name);
      return {
        endpoints: records.map((r) => ({ address: `${r.address.includes(':') ? `[${r.address}]` : r.address}:${o.port ?? 80}`, weight: 1 })),
        ttls: records.map((r) => r.ttl),
      };
    }
    const srv = await this.#resolver.resolveSrv(o.name);
    const targets = [...new Set(srv.map((r) => r.name))];
    const resolved = new Map<string, { address: string; ttl: number }[]>();
    // node:dns gives no TTL for SRV answers; the targets' address TTLs pace the lookups.
    await Promise.all(targets.map(async (t) => resolved.set(t, await this.#resolveHostAny(t))));
    return {
      endpoints: srvEndpoints(srv, (t) => (resolved.get(t) ?? []).map((r) => r.address)),
      ttls: [...resolved.values()].flat().map((r) => r.ttl),
    };
  }

  /** An SRV target: its A records, else its AAAA records. */
  async #resolveHostAny(host: string): Promise<{ address: string; ttl: number }[]> {
    try {
      return await this.#resolver.resolve4(host, { ttl: true });
    } catch {
      return this.#resolver.resolve6(host, { ttl: true });
    }
  }

  async #lookup(): Promise<void> {
    if (this.#sink === undefined) return;
    const o = this.#opts;
    let delay: number;
    try {
      this.lookups++;
      const answer = await this.#query();
      const sink = this.#sink;
      if (sink === undefined) return;
      if (answer.endpoints.length === 0) throw new Error('no records');
      answer.endpoints.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
      const text = JSON.stringify(answer.endpoints);
      if (text !== this.#lastDelivered) {
        this.#lastDelivered = text;
        sink.update(answer.endpoints);
      }
      delay = nextLookupMs(answer.ttls, o.ttlFloorMs, o.ttlCeilingMs);
    } catch (err) {
      const sink = this.#sink;
      if (sink === undefined) return;
      const e = err as NodeJS.ErrnoException;
      sink.unavailable(`dns ${o.type} ${o.name}: ${e.code ?? e.message}`);
      // Retry soon (the floor), so a resolver blip costs little.
      delay = o.ttlFloorMs;
    }
    this.nextInMs = delay;
    this.#timer = setTimeout(() => void this.#lookup(), delay);
    this.#timer.unref();
  }
}
