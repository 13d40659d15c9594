// The running sidecar: owns listeners, the admin server and the current snapshot; reloads atomically and drains on stop.
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { AdminServer, type AdminSource } from '../admin/admin-server.js';
import { loadAdminToken, type TokenDigest } from '../admin/admin-token.js';
import { scrapeApp } from '../admin/app-metrics.js';
import { ConfigError, formatIssue } from '../config/errors.js';
import type { LoadedConfig } from '../config/load.js';
import { loadConfigOffThread } from '../config/load-worker.js';
import type { Config } from '../config/schema.js';
import { Listener, listenerIdentity } from '../listener/listener.js';
import { accessLogOptions, compileAccessLog, createAccessLog, noAccessLog, type AccessLog } from '../observability/access-log.js';
import { SidecarMetrics } from '../observability/catalogue.js';
import { LogThrottle } from '../observability/log-throttle.js';
import { systemClock } from '../core/clock.js';
import type { Logger } from '../observability/logger.js';
import type { ServerDeps } from '../http-server/exchange.js';
import { UpstreamRegistry } from '../upstream/registry.js';
import { flushExporters } from '../filters/tracing/tracing.js';
import type { Connector } from '../upstream/connector.js';
import { ClusterStateRegistry } from '../cluster/endpoint-state.js';
import { Registration } from '../discovery/register.js';
import { EtcdKeys } from '../store/etcd-keys.js';
import { ConfigSync } from '../store/config-sync.js';
import type { Cluster } from '../cluster/cluster.js';
import { RuntimeSnapshot } from '../runtime/snapshot.js';
import { ViaNames } from '../runtime/via.js';
import { loadTlsCode, usesTls, type TlsCode } from './tls-code.js';
import { hashText, isEmptyText, readStable, readiness, refusal, type FileRead } from './reload-guard.js';

/** The reason the file watcher gives; any other reload (SIGHUP) re-applies even content it has seen. */
const FILE_CHANGE = 'file change';

interface QueuedReload {
  /** Apply even when the content is what was last seen (a SIGHUP joined this one). */
  always: boolean;
  done: Promise<boolean>;
}

/** A socket the new config may need the port of, because what holds it is going away. */
interface PortHolder {
  readonly address: string;
  readonly port: number;
  release(): Promise<void>;
  restore(): Promise<void>;
}

const WILDCARD = new Set(['0.0.0.0', '::', '']);
/** Whether binding address:port needs the holder's port (port 0 binds any free port; a wildcard clashes with every address). */
const portsClash = (heldAddress: string, heldPort: number, address: string, port: number): boolean =>
  port !== 0 && heldPort === port && (heldAddress === address || WILDCARD.has(heldAddress) || WILDCARD.has(address));

export interface SidecarOptions {
  /** Config file; the embedded default when absent. */
  readonly configPath?: string | undefined;
  readonly logger: Logger;
  /** An already loaded config (the CLI loads it first to learn the log level). */
  readonly loaded?: LoadedConfig | undefined;
  /** Admin POST /quit: the owner of the process stops it (the CLI drains, as on SIGTERM, and exits 0). */
  readonly onQuit?: (() => void) | undefined;
}

export class Sidecar implements ServerDeps {
  readonly metrics = new SidecarMetrics();
  readonly logger: Logger;
  readonly #registry: UpstreamRegistry;
  /** ServerDeps: tunnels connect through the same seam as the upstream clients. */
  get connector(): Connector {
    return this.#registry.connector;
  }
  /** What the sidecar knows about each (cluster, endpoint): survives reloads for endpoints that stay. */
  readonly #clusterStates = new ClusterStateRegistry();
  /** The listeners' Via names, kept across reloads so a request that loops back after one is still caught. */
  readonly #vias = new ViaNames();
  /** The TLS code, loaded the first time a config has TLS (a plaintext sidecar never loads it). */
  #tls: TlsCode | undefined;
  readonly #configPath: string | undefined;
  readonly #listeners = new Map<string, Listener>();
  #snapshot: RuntimeSnapshot;
  #source: string;
  #accessLog: AccessLog = noAccessLog;
  #accessLogPath: string | undefined;
  #admin: AdminServer | undefined;
  #adminKey = '';
  /** The admin bearer token's digest; read again on every apply so a reload (SIGHUP) picks up a new token. */
  #adminToken: TokenDigest | undefined;
  #watcher: FSWatcher | undefined;
  #fileHash = '';
  #stopping = false;
  /** Set by drain(): /ready fails and listeners answer with Connection: close / GOAWAY; they still accept. */
  #drainStartedAt: number | undefined;
  #shutdown: Promise<void> | undefined;
  #endDrainDelay: (() => void) | undefined;
  readonly #onQuit: (() => void) | undefined;
  /** register: the app's key in etcd under a kept-alive lease (withdrawn first on drain). */
  #registration: Registration | undefined;
  /** config_source: the watched key, and its last value (laid over the file on every reload). */
  #store: EtcdKeys | undefined;
  #storeText: string | undefined;
  #storeRevision: string | undefined;
  #storeError: string | undefined;
  #sync: ConfigSync | undefined;
  #reloading: Promise<boolean> = Promise.resolve(true);
  #queued: QueuedReload | undefined;
  /** One line a minute at most when the app's metrics keep failing (every scrape tries). */
  readonly #appMetricsLog = new LogThrottle(systemClock, 60_000);

  private constructor(loaded: LoadedConfig, opts: SidecarOptions, tls: TlsCode | undefined) {
    this.logger = opts.logger;
    this.#registry = new UpstreamRegistry(undefined, { logger: opts.logger, metrics: this.metrics });
    if (tls) this.#useTls(tls);
    this.#configPath = opts.configPath;
    this.#onQuit = opts.onQuit;
    this.#source = loaded.source;
    this.metrics.endpoints.max = loaded.config.admin.metrics.max_endpoint_series;
    this.#snapshot = new RuntimeSnapshot(loaded, this.#registry, this.metrics, this.#clusterStates, this.#vias);
    this.metrics.debugRequests.configure(this.#snapshot.config.admin.debug_requests);
    this.metrics.latencyHistory.enabled = this.#snapshot.config.admin.latency_history.enabled;
    if (loaded.config.admin.metrics.process) this.metrics.process.start();
    this.metrics.accessLogDropped = () => this.#accessLog.dropped();
  }

  #useTls(tls: TlsCode): void {
    this.#tls = tls;
    this.#registry.useTls(tls.TlsClient);
  }

  /** Loads config (throws ConfigError when invalid), binds every port, and starts serving. */
  static async start(opts: SidecarOptions): Promise<Sidecar> {
    const loaded = opts.loaded ?? (await loadConfigOffThread(opts.configPath));
    const sidecar = new Sidecar(loaded, opts, usesTls(loaded.config) ? await loadTlsCode() : undefined);
    try {
      await sidecar.#apply(loaded, undefined);
    } catch (err) {
      await sidecar.stop(0);
      throw err;
    }
    if (opts.configPath) sidecar.#fileHash = hashFile(opts.configPath);
    sidecar.metrics.reloadTime.get().set(Date.now() / 1000);
    sidecar.metrics.configValid.get().set(1);
    if (opts.configPath && loaded.config.watch) sidecar.#watch(opts.configPath);
    sidecar.#register();
    sidecar.#followStore();
    sidecar.#startSync();
    return sidecar;
  }

  current(): RuntimeSnapshot {
    return this.#snapshot;
  }

  accessLog(): AccessLog {
    return this.#accessLog;
  }

  get config(): Config {
    return this.#snapshot.config;
  }

  /** Bound port of a listener (useful with port 0). */
  listenerPort(name: string): number | undefined {
    return this.#listeners.get(name)?.port;
  }

  get adminPort(): number | undefined {
    return this.#admin?.port;
  }

  /**
   * Re-reads the config file once it has stopped changing. A config that is invalid, empty, drops every listener by
   * accident, or cannot be applied whole leaves the running one in force. Resolves true when applied. Requests that
   * arrive while one is waiting its turn join it; a file change whose content was already seen does nothing.
   */
  reload(reason = 'signal'): Promise<boolean> {
    const always = reason !== FILE_CHANGE;
    if (this.#queued) {
      this.#queued.always ||= always;
      return this.#queued.done;
    }
    const queued: QueuedReload = { always, done: Promise.resolve(false) };
    queued.done = this.#reloading
      .then(() => {
        this.#queued = undefined;
        return this.#reload(reason, queued.always);
      })
      .catch((err: unknown) => {
        // Nothing a reload does may stop the process or the reloads after it.
        this.#reloadFailed(reason, 'apply', { err: (err as Error)?.message ?? String(err) }, 'config reload failed; the previous config stays in force');
        return false;
      });
    this.#queued = queued;
    this.#reloading = queued.done;
    return queued.done;
  }

  #reloadFailed(reason: string, cause: string, details: Record<string, unknown>, msg: string): false {
    this.metrics.reloads.get({ result: 'failure' }).inc();
    this.metrics.reloadFailures.get({ reason: cause }).inc();
    this.metrics.configValid.get().set(0);
    this.logger.error({ reason, cause, ...details }, msg);
    return false;
  }

  async #reload(reason: string, always: boolean): Promise<boolean> {
    if (!this.#configPath || this.#stopping) return false;
    const file = this.#configPath;
    let read: FileRead;
    try {
      read = await readStable(file);
    } catch (err) {
      return this.#reloadFailed(reason, 'unreadable', { issues: [`${file}: cannot read config: ${(err as Error).message}`] }, 'config reload rejected; the previous config stays in force');
    }
    if (!always && read.hash === this.#fileHash) return false; // the watcher woke for content already applied or refused
    this.#fileHash = read.hash;
    if (this.#stopping) return false;
    if (isEmptyText(read.text)) {
      return this.#reloadFailed(
        reason,
        'empty_file',
        { issues: [`${file}: the file is empty (caught half-written?); write "listeners: []" and "allow_no_listeners: true" to remove every listener`] },
        'config reload refused; the previous config stays in force',
      );
    }
    const before = this.config;
    let loaded: LoadedConfig;
    // config_source: the store's document over the file (the file alone until the key was first read).
    const storeKey = this.config.config_source?.etcd.key;
    const storeText = storeKey === undefined ? undefined : this.#storeText;
    let text = read.text;
    let label = file;
    let storeLines = 0;
    // Loaded only with a config_source: compose.ts needs the yaml package, which `run` otherwise never loads.
    const compose = storeKey !== undefined && storeText !== undefined ? await import('../config/compose.js') : undefined;
    try {
      if (compose !== undefined && storeText !== undefined) {
        label = `etcd:${storeKey}`;
        const composed = compose.composeConfig(read.text, storeText, label);
        text = composed.text;
        storeLines = composed.storeLines;
      }
      loaded = await loadConfigOffThread(label, process.env, text);
    } catch (err) {
      const issues = err instanceof ConfigError ? (storeLines > 0 && compose !== undefined ? compose.relabel(err.issues, storeLines, file).map(formatIssue) : err.message.split('\n')) : [(err as Error).message];
      if (storeKey !== undefined && storeText !== undefined) this.#storeError = issues.join('; ');
      return this.#reloadFailed(reason, 'invalid', { issues }, 'config reload rejected; the previous config stays in force');
    }
    if (this.#stopping) return false;
    const refused = refusal(loaded.config, this.#listeners.size);
    if (refused) {
      return this.#reloadFailed(
        reason,
        refused,
        { issues: [`${file}: no listeners, while ${this.#listeners.size === 1 ? 'one serves' : `${this.#listeners.size} serve`} (caught half-written?); set "allow_no_listeners: true" to mean it`] },
        'config reload refused; the previous config stays in force',
      );
    }
    try {
      await this.#apply(loaded, this.#snapshot);
    } catch (err) {
      return this.#reloadFailed(reason, 'apply', { err: (err as Error).message }, 'config reload failed while applying; the previous config stays in force');
    }
    this.#source = loaded.source;
    this.metrics.reloads.get({ result: 'success' }).inc();
    this.metrics.reloadTime.get().set(Date.now() / 1000);
    this.metrics.configValid.get().set(1);
    this.logger.info({ reason, listeners: loaded.config.listeners.length, clusters: loaded.config.clusters.length }, 'config reloaded');
    this.#reconcileAgents(before);
    return true;
  }

  /**
   * All or nothing: builds the new graph and binds everything it needs (listener ports, the access log, the admin
   * server when its address changed) while the old config serves; only then swaps, in one step, and retires what the
   * new config dropped. On any failure what was opened is closed, ports handed over are taken back, and the old
   * snapshot, listeners and admin server stay exactly as they were.
   */
  async #apply(loaded: LoadedConfig, previous: RuntimeSnapshot | undefined): Promise<void> {
    const config = loaded.config;
    if (this.#tls === undefined && usesTls(config)) this.#useTls(await loadTlsCode());
    if (previous) this.metrics.endpoints.max = config.admin.metrics.max_endpoint_series;
    const next = previous ? new RuntimeSnapshot(loaded, this.#registry, this.metrics, this.#clusterStates, this.#vias) : this.#snapshot;
    // Existing listeners the new config keeps exactly as they are; every other one drains once the swap is done.
    const kept = new Set<Listener>();
    for (const lc of config.listeners) {
      const existing = this.#listeners.get(lc.name);
      if (existing && listenerIdentity(existing.config) === listenerIdentity(lc)) kept.add(existing);
    }
    // Read before anything binds: a missing token file fails the start, or the reload with the old config kept.
    const adminToken = config.admin.enabled ? loadAdminToken(config.admin) : undefined;
    const adminKey = config.admin.enabled ? `${config.admin.address}:${config.admin.port}` : '';
    const adminChanges = adminKey !== this.#adminKey;
    // Ports held by what is going away (listeners renamed, moved, re-configured or removed; the admin server when it
    // moves): a new socket that needs one of them takes it over, and gives it back if the reload fails.
    const holders: PortHolder[] = [];
    for (const l of this.#listeners.values()) {
      if (!kept.has(l)) holders.push({ address: l.config.address, port: l.port, release: () => l.stopAccepting(), restore: () => l.listen() });
    }
    const oldAdmin = this.#admin;
    if (adminChanges && oldAdmin) {
      const [address, port] = [this.#snapshot.config.admin.address, oldAdmin.port];
      holders.push({ address, port, release: () => oldAdmin.stopAccepting(), restore: () => oldAdmin.listen(address, port) });
    }
    const released: PortHolder[] = [];
    const takeOver = async (address: string, port: number): Promise<void> => {
      for (const h of holders) {
        if (!released.includes(h) && portsClash(h.address, h.port, address, port)) {
          // The old socket stops accepting (its connections carry on) so the new one can bind the port.
          await h.release();
          released.push(h);
        }
      }
    };
    const opened: Listener[] = [];
    let admin: AdminServer | undefined;
    let accessLog: AccessLog | undefined;
    const accessLogPath = config.access_log.enabled ? config.access_log.path : undefined;
    // Compiled once per snapshot (validation already compiled the format string, so this does not throw).
    const accessFormat = compileAccessLog(accessLogOptions(config));
    try {
      for (const lc of config.listeners) {
        const existing = this.#listeners.get(lc.name);
        if (existing && kept.has(existing)) continue;
        await takeOver(lc.address, lc.port);
        const l = new Listener(lc, this, this.#tls?.TlsFront);
        opened.push(l);
        await l.listen();
        if (this.#drainStartedAt !== undefined) l.startDrain();
      }
      if (adminChanges && config.admin.enabled) {
        await takeOver(config.admin.address, config.admin.port);
        admin = this.#adminServer();
        await admin.listen(config.admin.address, config.admin.port);
      }
      if (accessLogPath !== this.#accessLogPath) accessLog = accessLogPath === undefined ? noAccessLog : createAccessLog(accessLogPath, accessFormat);
    } catch (err) {
      await this.#rollBack(opened, admin, released);
      if (previous) next.retire();
      throw err;
    }

    // Swap: new requests see the new snapshot from here on; requests in flight keep the one they started with.
    this.#snapshot = next;
    this.metrics.debugRequests.configure(next.config.admin.debug_requests);
    this.metrics.latencyHistory.enabled = next.config.admin.latency_history.enabled;
    if (next.config.admin.metrics.process) this.metrics.process.start();
    else this.metrics.process.stop();
    this.#adminToken = adminToken;
    const retiring = [...this.#listeners.values()].filter((l) => !kept.has(l));
    this.#listeners.clear();
    for (const l of kept) this.#listeners.set(l.name, l);
    for (const l of opened) this.#listeners.set(l.name, l);
    if (accessLog) {
      this.#accessLog.close();
      this.#accessLog = accessLog;
      this.#accessLogPath = accessLogPath;
    } else {
      this.#accessLog.configure(accessFormat);
    }
    if (adminChanges) {
      this.#admin = admin;
      this.#adminKey = adminKey;
      oldAdmin?.close().catch(() => {});
    }
    // Replaced and removed listeners drain: in-flight requests finish on them, as on shutdown.
    for (const l of retiring) l.close(config.drain_timeout).catch(() => {});
    previous?.retire();
  }

  /** Undoes a failed apply. Each step is tried on its own: one that fails is logged and must not stop the others. */
  async #rollBack(opened: readonly Listener[], admin: AdminServer | undefined, released: readonly PortHolder[]): Promise<void> {
    for (const l of opened) await l.close(0).catch(() => 0);
    await admin?.close();
    for (const h of released) {
      await h.restore().catch((err: Error) => {
        this.logger.error({ address: h.address, port: h.port, err: err.message }, 'a failed reload could not take its port back; /ready fails until a reload binds it');
      });
    }
  }

  #adminServer(): AdminServer {
    return new AdminServer(this.#adminSource());
  }

  #adminSource(): AdminSource {
    return {
      readiness: () =>
        readiness(this.#stopping || this.#drainStartedAt !== undefined, this.#snapshot.config.listeners.map((l) => l.name), (name) => this.#listeners.get(name)?.listening === true),
      config: () => this.#snapshot.config,
      configSource: () => this.#source,
      clusters: () => this.clusterState(),
      debugRequests: () => this.metrics.debugRequests,
      history: () => this.metrics.latencyHistory.snapshot(),
      historyEnabled: () => this.metrics.latencyHistory.enabled,
      upstreamAttempts: () => this.metrics.endpoints.totalRequests(),
      answers: () => ({ answered: this.metrics.answered, failed: this.metrics.failedAnswers }),
      latency: () => {
        const h = this.metrics.latencyHistory;
        return { enabled: h.enabled, relative_error: h.relativeError, minutes: h.minutes, max_series: h.maxSeries, dropped_series: h.dropped, bytes: h.bytes, series: h.snapshot() };
      },
      metrics: (format) => {
        const app = this.#snapshot.config.admin.metrics.merge_app;
        if (app === undefined) return this.metrics.scrape(format);
        return scrapeApp(app).then((r) => {
          if (!r.ok) {
            const held = this.#appMetricsLog.take();
            if (held !== undefined) this.logger.warn({ err: r.error, url: app.url, held_back: held }, 'the app\'s metrics were left out of this scrape (admin.metrics.merge_app)');
          }
          return this.metrics.scrape(format, r);
        });
      },
      drain: () => this.drain('admin POST /drain'),
      setLogLevel: (level) => {
        const from = this.logger.level;
        this.logger.setLevel(level);
        this.logger.info({ from, to: level }, 'log level changed (admin POST /logging)');
      },
      logLevel: () => this.logger.level,
      reopenLogs: () => this.reopenLogs('admin POST /reopen_logs'),
      tokenDigest: () => this.#adminToken,
      quit: () => {
        this.logger.info({}, 'quit requested (admin POST /quit)');
        if (this.#onQuit) this.#onQuit();
        else void this.shutdown('admin POST /quit');
      },
    };
  }

  /** Log rotation (SIGUSR1, admin POST /reopen_logs): the access-log file is opened again by its path. */
  reopenLogs(reason: string): void {
    try {
      this.#accessLog.reopen();
      this.logger.info({ reason, path: this.#accessLogPath ?? null }, 'access log reopened');
    } catch (err) {
      this.logger.error({ reason, path: this.#accessLogPath, err: (err as Error).message }, 'cannot reopen the access log; lines go to the old file');
    }
  }

  /** config_source: watches the key; every change reloads (the file's bootstrap with the key's document over it). */
  #followStore(): void {
    const src = this.config.config_source?.etcd;
    if (src === undefined || this.#store !== undefined || this.#configPath === undefined) return;
    const key = src.key;
    const store = new EtcdKeys(src.endpoints, [key], src.timeout, {
      changed: (values, revision) => {
        const value = values.get(key);
        if (value === undefined) return;
        if (value === null) {
          this.#storeError = `etcd:${key}: the key does not exist; the current config stays`;
          this.metrics.configStoreErrors.get({ reason: 'missing' }).inc();
          this.logger.warn({ key, revision }, 'config store: the key does not exist; the current config stays');
          return;
        }
        this.#storeText = value;
        this.#storeRevision = revision;
        void this.reload('config store').then((ok) => {
          if (ok) this.#storeError = undefined;
          else this.metrics.configStoreErrors.get({ reason: 'invalid' }).inc();
        });
      },
      unavailable: (reason) => {
        this.#storeError = reason;
        this.metrics.configStoreErrors.get({ reason: 'unavailable' }).inc();
        this.logger.warn({ key, reason }, 'config store unavailable; the current config stays');
      },
    });
    this.#store = store;
    store.start();
  }

  #startSync(): void {
    const c = this.config.config_sync;
    if (c === undefined || this.#sync !== undefined) return;
    const sync = new ConfigSync(c, this.logger, this.metrics);
    this.#sync = sync;
    sync.start();
  }

  /** config_source's key, revision applied and last error, for /config and tests. */
  storeState(): { key: string; revision: string | null; last_error: string | null } | undefined {
    const key = this.config.config_source?.etcd.key;
    return key === undefined ? undefined : { key, revision: this.#storeRevision ?? null, last_error: this.#storeError ?? null };
  }

  /** After a reload: restarts registration, the config store watch and config_sync when their settings changed. */
  #reconcileAgents(before: Config): void {
    const now = this.config;
    const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
    if (!same(before.register, now.register)) {
      void this.#registration?.withdraw();
      this.#registration = undefined;
      if (this.#drainStartedAt === undefined) this.#register();
    }
    if (!same(before.config_source, now.config_source)) {
      this.#store?.stop();
      this.#store = undefined;
      this.#storeText = undefined;
      this.#storeRevision = undefined;
      this.#storeError = undefined;
      this.#followStore();
    }
    if (!same(before.config_sync, now.config_sync)) {
      this.#sync?.stop();
      this.#sync = undefined;
      this.#startSync();
    }
  }

  /** Starts registering the app (config `register`), once. */
  #register(): void {
    const r = this.config.register;
    if (r === undefined || this.#registration !== undefined) return;
    const reg = new Registration(
      { endpoints: r.endpoints, prefix: r.prefix, service: r.service, address: r.address, weight: r.weight, zone: r.zone, ttlMs: r.ttl, timeoutMs: r.timeout, healthUrl: r.health_url },
      { onState: (state, detail) => this.logger.info({ key: reg.key, state, detail }, `registration ${state}`) },
    );
    this.#registration = reg;
    reg.start();
  }

  /** The registration's key and state, for /clusters. */
  registrationState(): { key: string; state: string; last_error: string | null } | undefined {
    const r = this.#registration;
    return r === undefined ? undefined : { key: r.key, state: r.state, last_error: r.lastError ?? null };
  }

  /** True from the first drain() on. */
  get draining(): boolean {
    return this.#drainStartedAt !== undefined;
  }

  /**
   * Starts a drain without stopping: /ready fails at once, listeners keep accepting but answer with
   * Connection: close (HTTP/1.1) and GOAWAY (HTTP/2) so callers and load balancers move away.
   */
  drain(reason: string): void {
    if (this.#drainStartedAt !== undefined || this.#stopping) return;
    this.#drainStartedAt = Date.now();
    // Withdrawn first: other sidecars' etcd watches drop this host before its listeners start turning callers away.
    void this.#registration?.withdraw();
    for (const l of this.#listeners.values()) l.startDrain();
    this.logger.info({ reason, drain_delay_ms: this.config.drain_delay, drain_timeout_ms: this.config.drain_timeout }, 'draining: /ready fails; listeners still accept for drain_delay, answering with Connection: close / GOAWAY');
  }

  /**
   * Graceful stop: drain(), keep accepting until drain_delay has passed since the drain began (a drain started by
   * POST /drain counts), then stop() (no new connections, in-flight requests get drain_timeout).
   */
  shutdown(reason: string): Promise<void> {
    if (this.#shutdown) return this.#shutdown;
    this.drain(reason);
    const left = Math.max(0, (this.#drainStartedAt ?? Date.now()) + this.config.drain_delay - Date.now());
    const delay = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, left);
      this.#endDrainDelay = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#shutdown = delay.then(() => {
      this.#endDrainDelay = undefined;
      this.logger.info({ drain_timeout_ms: this.config.drain_timeout }, 'no longer accepting; in-flight requests may finish within drain_timeout');
      return this.stop();
    });
    return this.#shutdown;
  }

  /** Cuts drain_delay short (a second SIGTERM). False when shutdown() is not in its delay. */
  endDrainDelay(): boolean {
    const end = this.#endDrainDelay;
    if (!end) return false;
    end();
    return true;
  }

  clusterState(): unknown {
    const clusters = [...this.#snapshot.clusters.values()].map((c) => ({
      name: c.name,
      protocol: c.config.protocol,
      lb: c.config.lb.policy,
      panic: c.panic,
      discovery: discoveryView(c),
      endpoints: c.endpoints.map((e) => {
        const st = c.endpointStatus(e);
        return {
          address: e.address,
          weight: e.weight,
          source: e.source,
          updated_at: e.updatedAt.toISOString(),
          zone: e.zone ?? null,
          priority: e.priority,
          health: healthWord(c.config.health_check ? st.health : 'healthy', st.ejected),
          routable: e.available,
          failed_active_check: st.health === 'unhealthy',
          ejected: st.ejected,
          ejected_until: st.ejectedUntil?.toISOString() ?? null,
          ejections: st.ejections,
          active_requests: e.stats.active,
          requests: e.stats.requests,
          failures: e.stats.failures,
          connections: e.upstream.connections,
        };
      }),
    }));
    const registration = this.registrationState();
    const store = this.storeState();
    return { clusters, ...(registration === undefined ? {} : { registration }), ...(store === undefined ? {} : { config_source: store }) };
  }

  #watch(file: string): void {
    // Watch the file itself (watching its directory would wake us for every other file written there, such as an
    // access log). Editors and ConfigMap updates replace the file: on 'rename' the watch is re-armed on the new inode.
    // An event only says "look again": the reload waits for the file to settle and skips content it already saw.
    let timer: NodeJS.Timeout | undefined;
    const check = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => void this.reload(FILE_CHANGE), 150);
    };
    const arm = (attempt = 0): void => {
      if (this.#stopping) return;
      try {
        const watcher = watch(file, (event) => {
          check();
          if (event === 'rename') {
            watcher.close();
            setTimeout(() => arm(), 100);
          }
        });
        watcher.on('error', () => {
          watcher.close();
          setTimeout(() => arm(), 500);
        });
        this.#watcher = watcher;
        if (attempt > 0) check();
      } catch (err) {
        if (attempt === 0) this.logger.warn({ err: (err as Error).message }, 'cannot watch the config file; retrying (SIGHUP always reloads)');
        setTimeout(() => arm(attempt + 1), 1000).unref();
      }
    };
    arm();
  }

  /** Stops accepting, drains in-flight requests for up to `timeoutMs`, then closes everything. */
  async stop(timeoutMs = this.#snapshot.config.drain_timeout): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#watcher?.close();
    const withdrawn = this.#registration?.withdraw();
    this.#store?.stop();
    this.#sync?.stop();
    const cut = await Promise.all([...this.#listeners.values()].map((l) => l.close(timeoutMs)));
    this.#listeners.clear();
    const connections = cut.reduce((a, b) => a + b, 0);
    if (connections > 0) this.logger.warn({ connections, drain_timeout_ms: timeoutMs }, 'drain_timeout reached: connections still open were closed');
    // Every request has ended: the tracing exporters send what they hold (bounded, a dead collector costs 2 s at most).
    await flushExporters(this.metrics, 2000);
    await this.#admin?.close();
    this.#snapshot.retire();
    await this.#registry.closeAll();
    await withdrawn;
    this.#accessLog.close();
    this.metrics.process.stop();
  }
}

/**
 * One word per endpoint for /clusters: unhealthy (failed active checks) wins over ejected (outlier detection); unknown
 * while active checks have not answered yet; healthy otherwise (also without active checks). `routable` says whether
 * the balancer may pick it now (panic routing makes every endpoint routable).
 */
function healthWord(active: 'unknown' | 'healthy' | 'unhealthy', ejected: boolean): 'healthy' | 'unhealthy' | 'ejected' | 'unknown' {
  if (active === 'unhealthy') return 'unhealthy';
  if (ejected) return 'ejected';
  return active;
}

function hashFile(file: string): string {
  return hashText(readFileSync(file));
}

/** A cluster's discovery as /clusters shows it. */
function discoveryView(c: Cluster): { source: string; version: number; updated_at: string | null; last_error: string | null; empty_pending_until: string | null; active_priority: number | null } {
  const d = c.discovery;
  return { source: d.source, version: d.version, updated_at: d.updatedAt?.toISOString() ?? null, last_error: d.lastError ?? null, empty_pending_until: d.emptyPendingUntil?.toISOString() ?? null, active_priority: c.activePriority ?? null };
}
