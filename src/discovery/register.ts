// Registration: the sidecar publishes its app under `<prefix><service>/<address>` in etcd, on a lease it keeps alive,
// once the app answers its health URL. A host that dies stops the keep-alives and the key vanishes with the lease;
// a drain revokes the lease first, so callers stop picking this host before its listeners go.
import type { Etcd3, Lease } from 'etcd3';
import { etcdClient, serviceKeyPrefix, within } from './etcd.js';

export interface RegistrationOptions {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly service: string;
  readonly address: string;
  readonly weight: number;
  readonly zone?: string | undefined;
  readonly ttlMs: number;
  readonly timeoutMs: number;
  /** Registration waits until a GET here answers 2xx; absent: at once. */
  readonly healthUrl?: string | undefined;
  /** How often the health URL is polled and a lost lease re-granted, ms (default 1000). */
  readonly retryMs?: number | undefined;
}

export type RegistrationState = 'waiting-for-app' | 'registering' | 'registered' | 'withdrawn';

export interface RegistrationEvents {
  onState?(state: RegistrationState, detail?: string): void;
}

export class Registration {
  readonly key: string;
  readonly #opts: RegistrationOptions;
  readonly #events: RegistrationEvents;
  readonly #client: Etcd3;
  #lease: Lease | undefined;
  #state: RegistrationState = 'waiting-for-app';
  #timer: NodeJS.Timeout | undefined;
  #withdrawn = false;
  lastError: string | undefined;

  constructor(opts: RegistrationOptions, events: RegistrationEvents = {}) {
    this.#opts = opts;
    this.#events = events;
    this.key = `${serviceKeyPrefix(opts.prefix, opts.service)}${opts.address}`;
    this.#client = etcdClient(opts.endpoints, opts.timeoutMs);
  }

  get state(): RegistrationState {
    return this.#state;
  }

  start(): void {
    void this.#step();
  }

  #set(state: RegistrationState, detail?: string): void {
    this.#state = state;
    this.#events.onState?.(state, detail);
  }

  #later(): void {
    if (this.#withdrawn) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#step(), this.#opts.retryMs ?? 1_000);
    this.#timer.unref();
  }

  async #healthy(): Promise<boolean> {
    const url = this.#opts.healthUrl;
    if (url === undefined) return true;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.#opts.timeoutMs) });
      await res.body?.cancel();
      if (res.ok) return true;
      this.lastError = `${url}: ${res.status}`;
    } catch (err) {
      this.lastError = `${url}: ${(err as Error).message}`;
    }
    return false;
  }

  async #step(): Promise<void> {
    if (this.#withdrawn) return;
    if (this.#state === 'waiting-for-app') {
      if (!(await this.#healthy())) {
        this.#later();
        return;
      }
      if (this.#withdrawn) return;
      this.#set('registering');
    }
    const o = this.#opts;
    const lease = this.#client.lease(Math.max(2, Math.ceil(o.ttlMs / 1000)), { autoKeepAlive: true });
    this.#lease = lease;
    lease.on('lost', (err) => {
      if (this.#withdrawn || this.#lease !== lease) return;
      // etcd forgot the lease (expired while unreachable): grant a new one and publish again.
      this.lastError = `lease lost: ${err.message}`;
      this.#lease = undefined;
      lease.release();
      this.#set('registering', this.lastError);
      this.#later();
    });
    try {
      const value = JSON.stringify(o.zone === undefined ? { weight: o.weight } : { weight: o.weight, zone: o.zone });
      await within(lease.put(this.key).value(value).exec(), o.timeoutMs * 2, 'register');
      if (this.#withdrawn) {
        await lease.revoke().catch(() => {});
        return;
      }
      this.lastError = undefined;
      this.#set('registered');
    } catch (err) {
      this.lastError = (err as Error).message.split('\n')[0];
      if (this.#lease === lease) this.#lease = undefined;
      lease.release();
      if (this.#withdrawn) return;
      this.#set('registering', this.lastError);
      this.#later();
    }
  }

  /** Revokes the lease (the key goes at once) and stops; idempotent. Resolves when etcd confirmed or gave up. */
  async withdraw(): Promise<void> {
    if (this.#withdrawn) return;
    this.#withdrawn = true;
    clearTimeout(this.#timer);
    const lease = this.#lease;
    this.#lease = undefined;
    if (lease !== undefined) {
      try {
        await within(lease.revoke(), this.#opts.timeoutMs, 'revoke');
      } catch (err) {
        // Unreachable store: the lease expires by itself within its TTL.
        this.lastError = `withdraw: ${(err as Error).message.split('\n')[0]}`;
        lease.release();
      }
    }
    this.#set('withdrawn');
    this.#client.close();
  }
}
