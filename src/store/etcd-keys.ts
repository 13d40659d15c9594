// Follows a set of etcd keys (exact keys): read once, then watched from the read's revision; after a disconnect they
// are read again and the watch restarts from that read's revision. Used by config_source and config_sync.
import type { Etcd3, Watcher } from 'etcd3';
import { etcdClient, within } from '../discovery/etcd.js';

export interface KeyEvents {
  /** The keys' values after a read or a watched change (null: the key does not exist). Only changed keys. */
  changed(values: ReadonlyMap<string, string | null>, revision: string): void;
  /** The store cannot be read now; the last values stand. */
  unavailable(reason: string): void;
}

export class EtcdKeys {
  readonly #endpoints: readonly string[];
  readonly #keys: readonly string[];
  readonly #timeoutMs: number;
  readonly #events: KeyEvents;
  #client: Etcd3 | undefined;
  #watchers: Watcher[] = [];
  #retry: NodeJS.Timeout | undefined;
  #backoff: number;
  #epoch = 0;
  readonly #values = new Map<string, string | null>();

  constructor(endpoints: readonly string[], keys: readonly string[], timeoutMs: number, events: KeyEvents) {
    this.#endpoints = endpoints;
    this.#keys = keys;
    this.#timeoutMs = timeoutMs;
    this.#backoff = timeoutMs;
    this.#events = events;
  }

  start(): void {
    this.#client = etcdClient(this.#endpoints, this.#timeoutMs);
    void this.#sync();
  }

  stop(): void {
    this.#epoch++;
    clearTimeout(this.#retry);
    for (const w of this.#watchers) void w.cancel().catch(() => {});
    this.#watchers = [];
    this.#client?.close();
    this.#client = undefined;
  }

  #emit(next: Map<string, string | null>, revision: string): void {
    const changed = new Map<string, string | null>();
    for (const [k, v] of next) {
      if (!this.#values.has(k) || this.#values.get(k) !== v) changed.set(k, v);
      this.#values.set(k, v);
    }
    if (changed.size > 0) this.#events.changed(changed, revision);
  }

  async #sync(): Promise<void> {
    const epoch = ++this.#epoch;
    const client = this.#client;
    if (client === undefined) return;
    try {
      // One transaction reads every key at one revision.
      const res = await within(client.if(this.#keys[0]!, 'Version', '>', -1).then(...this.#keys.map((k) => client.get(k))).else(...this.#keys.map((k) => client.get(k))).commit(), this.#timeoutMs, 'read');
      if (epoch !== this.#epoch) return;
      const revision = res.header.revision;
      const next = new Map<string, string | null>();
      res.responses.forEach((r, i) => {
        const kv = r.response_range?.kvs[0];
        next.set(this.#keys[i]!, kv === undefined ? null : kv.value.toString());
      });
      const start = (BigInt(revision) + 1n).toString();
      const watchers: Watcher[] = [];
      for (const key of this.#keys) {
        const creating = client.watch().key(key).startRevision(start).create();
        try {
          watchers.push(await within(creating, this.#timeoutMs, 'watch'));
        } catch (err) {
          creating.then((w) => void w.cancel().catch(() => {}), () => {});
          for (const w of watchers) void w.cancel().catch(() => {});
          throw err;
        }
      }
      if (epoch !== this.#epoch) {
        for (const w of watchers) void w.cancel().catch(() => {});
        return;
      }
      this.#watchers = watchers;
      this.#backoff = this.#timeoutMs;
      for (const w of watchers) {
        w.on('data', (r) => {
          if (epoch !== this.#epoch) return;
          const batch = new Map<string, string | null>();
          for (const ev of r.events) batch.set(ev.kv.key.toString(), ev.type === 'Delete' ? null : ev.kv.value.toString());
          this.#emit(batch, r.header.revision);
        });
        w.on('disconnected', (err) => this.#lost(epoch, `watch disconnected: ${err.message}`));
        w.on('error', (err) => this.#lost(epoch, `watch failed: ${err.message}`));
      }
      this.#emit(next, revision);
    } catch (err) {
      this.#lost(epoch, `cannot read ${this.#keys.join(', ')}: ${(err as Error).message.split('\n')[0]}`);
    }
  }

  #lost(epoch: number, reason: string): void {
    if (epoch !== this.#epoch) return;
    this.#epoch++;
    for (const w of this.#watchers) void w.cancel().catch(() => {});
    this.#watchers = [];
    this.#events.unavailable(`etcd ${this.#endpoints.join(',')}: ${reason}`);
    const wait = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, 2_000);
    this.#retry = setTimeout(() => void this.#sync(), wait);
    this.#retry.unref();
  }
}
