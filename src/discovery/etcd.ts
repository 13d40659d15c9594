// The etcd source: a service's endpoints are the keys under `<prefix><service>/` in an etcd v3 store, one key per
// endpoint (`<prefix><service>/<host:port>`, value empty or JSON { weight, zone }). Read once, then watched from the
// read's revision (no polling); after a disconnect the whole prefix is read again and the watch restarts from that
// read's revision, so nothing that changed during the outage is missed, even past a compaction.
import type { IPolicy } from 'cockatiel';
import { createRequire } from 'node:module';
import type { Etcd3, IKeyValue, IOptions, Watcher } from 'etcd3';
import type { DiscoveredEndpoint, DiscoverySink, DiscoverySource } from './source.js';

/** Same rule as the config schema's host:port. */
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

export interface EtcdSourceOptions {
  /** Client URLs, e.g. ["http://127.0.0.1:2379"]. */
  readonly endpoints: readonly string[];
  /** Key prefix of all services (default "/sidecar/services/"). */
  readonly prefix: string;
  readonly service: string;
  /** Per-call deadline and the resync backoff's first step, ms. */
  readonly timeoutMs?: number;
}

/** The key prefix under which one service's endpoints live. */
export const serviceKeyPrefix = (prefix: string, service: string): string => `${prefix.endsWith('/') ? prefix : `${prefix}/`}${service}/`;

/** One key/value to an endpoint; throws naming the key when it is not one. */
export function parseEtcdEndpoint(keyPrefix: string, key: string, value: string): DiscoveredEndpoint {
  const address = key.slice(keyPrefix.length);
  if (!HOST_PORT.test(address)) throw new Error(`${key}: the key's last part must be host:port`);
  if (value.trim() === '') return { address, weight: 1 };
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch {
    throw new Error(`${key}: value is not JSON ({ "weight": 1, "zone": "a" } or empty)`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error(`${key}: value must be a JSON object`);
  const { weight = 1, zone } = doc as { weight?: unknown; zone?: unknown };
  if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1 || weight > 1000) throw new Error(`${key}: weight must be an integer 1..1000`);
  if (zone !== undefined && typeof zone !== 'string') throw new Error(`${key}: zone must be a string`);
  return zone === undefined ? { address, weight } : { address, weight, zone };
}

/**
 * No retries and no circuit breaker inside the client: the callers here retry on their own schedule, and the
 * client's default breaker would keep refusing calls for seconds after the store came back.
 */
const PASS_THROUGH: IPolicy = {
  _altReturn: undefined as never,
  onSuccess: () => ({ dispose() {} }),
  onFailure: () => ({ dispose() {} }),
  execute: async (fn, signal) => fn({ signal: signal ?? new AbortController().signal }),
};

/** An etcd3 client for the sidecar's own use (discovery, registration, config): no hidden retries or breaker. */
export function etcdClient(endpoints: readonly string[], dialTimeoutMs = 2_000): Etcd3 {
  const options: IOptions = { hosts: [...endpoints], dialTimeout: dialTimeoutMs, faultHandling: { host: () => PASS_THROUGH, global: PASS_THROUGH } };
  // Required on first use: etcd3 brings grpc-js, which a sidecar without etcd should never load (idle RSS).
  const { Etcd3: Client } = createRequire(import.meta.url)('etcd3') as typeof import('etcd3');
  return new Client(options);
}

/** Rejects after ms unless the promise settles first (a watch create() waits for a connection forever). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    t.unref();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(t);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

export class EtcdSource implements DiscoverySource {
  readonly name: string;
  readonly #opts: EtcdSourceOptions;
  readonly #keyPrefix: string;
  #client: Etcd3 | undefined;
  #sink: DiscoverySink | undefined;
  #watcher: Watcher | undefined;
  #retry: NodeJS.Timeout | undefined;
  #backoffMs: number;
  /** Key -> value as last read or watched. */
  readonly #kv = new Map<string, string>();
  #lastDelivered: string | undefined;
  /** Bumped on every (re)sync and on stop, so a stale async step knows it lost. */
  #epoch = 0;

  constructor(opts: EtcdSourceOptions) {
    this.#opts = opts;
    this.#keyPrefix = serviceKeyPrefix(opts.prefix, opts.service);
    this.name = `etcd:${this.#keyPrefix}`;
    this.#backoffMs = opts.timeoutMs ?? 250;
  }

  /** The store's revision the current set was read or watched at (for /clusters and tests). */
  revision = '0';

  start(sink: DiscoverySink): void {
    this.#sink = sink;
    this.#client = etcdClient(this.#opts.endpoints, this.#timeout());
    void this.#resync();
  }

  stop(): void {
    this.#epoch++;
    this.#sink = undefined;
    clearTimeout(this.#retry);
    void this.#watcher?.cancel().catch(() => {});
    this.#watcher = undefined;
    this.#client?.close();
    this.#client = undefined;
  }

  #timeout(): number {
    return this.#opts.timeoutMs ?? 2_000;
  }

  async #resync(): Promise<void> {
    const epoch = ++this.#epoch;
    const client = this.#client;
    if (client === undefined) return;
    try {
      const res = await client.getAll().prefix(this.#keyPrefix).options({ deadline: Date.now() + this.#timeout() }).exec();
      if (epoch !== this.#epoch) return;
      this.#kv.clear();
      for (const kv of res.kvs) this.#kv.set(kv.key.toString(), kv.value.toString());
      this.revision = res.header.revision;
      const creating = client
        .watch()
        .prefix(this.#keyPrefix)
        .startRevision((BigInt(res.header.revision) + 1n).toString())
        .create();
      const stale = (w: Watcher): void => void w.cancel().catch(() => {});
      let watcher: Watcher;
      try {
        watcher = await within(creating, this.#timeout(), 'watch');
      } catch (err) {
        creating.then(stale, () => {});
        throw err;
      }
      if (epoch !== this.#epoch) {
        stale(watcher);
        return;
      }
      this.#watcher = watcher;
      // Delivered once the watch stands, so every change after the read is seen by it.
      this.#deliver();
      this.#backoffMs = this.#opts.timeoutMs ?? 250;
      watcher.on('data', (r) => {
        if (epoch !== this.#epoch) return;
        for (const ev of r.events) this.#event(ev.type, ev.kv);
        this.revision = r.header.revision;
        this.#deliver();
      });
      // The client would resume the watch by itself; a full read instead also recovers from a compacted revision.
      watcher.on('disconnected', (err) => this.#lost(epoch, watcher, `etcd ${this.#opts.endpoints.join(',')}: watch disconnected: ${err.message}`));
      watcher.on('error', (err) => this.#lost(epoch, watcher, `etcd ${this.#opts.endpoints.join(',')}: watch failed: ${err.message}`));
    } catch (err) {
      if (epoch !== this.#epoch) return;
      this.#lost(epoch, undefined, `etcd ${this.#opts.endpoints.join(',')}: cannot read ${this.#keyPrefix}: ${(err as Error).message.split('\n')[0]}`);
    }
  }

  #event(type: 'Put' | 'Delete', kv: IKeyValue): void {
    const key = kv.key.toString();
    if (type === 'Delete') this.#kv.delete(key);
    else this.#kv.set(key, kv.value.toString());
  }

  #lost(epoch: number, watcher: Watcher | undefined, reason: string): void {
    if (epoch !== this.#epoch || this.#sink === undefined) return;
    this.#epoch++;
    if (watcher !== undefined) void watcher.cancel().catch(() => {});
    this.#watcher = undefined;
    this.#sink.unavailable(reason);
    const wait = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, 2_000);
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => void this.#resync(), wait);
    this.#retry.unref();
  }

  #deliver(): void {
    const sink = this.#sink;
    if (sink === undefined) return;
    const list: DiscoveredEndpoint[] = [];
    for (const [key, value] of this.#kv) {
      try {
        list.push(parseEtcdEndpoint(this.#keyPrefix, key, value));
      } catch (err) {
        sink.unavailable(`${(err as Error).message} (entry skipped)`);
      }
    }
    list.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
    const text = JSON.stringify(list);
    if (text === this.#lastDelivered) return;
    this.#lastDelivered = text;
    sink.update(list);
  }
}
