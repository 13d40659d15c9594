// Certificate, key and trust-bundle files kept in force: loaded once, reloaded when they change or on SIGHUP; a load
// that fails leaves the previous material in force (logged and counted). Also feeds the expiry gauge and warning.
import { X509Certificate } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import type { Logger } from '../observability/logger.js';
import type { SidecarMetrics } from '../observability/catalogue.js';

export interface TlsEnv {
  readonly logger: Logger;
  readonly metrics: SidecarMetrics;
}

/** The files a material is built from, and the certificates among them (for the expiry gauge). */
export interface MaterialFiles {
  readonly watched: readonly string[];
  readonly certificates: readonly string[];
}

const HOUR = 3_600_000;
const live = new Set<TlsMaterial<unknown>>();
let hupInstalled = false;

/** Re-reads every material's files now (SIGHUP; tests). */
export function reloadAllTlsMaterial(): void {
  for (const m of live) m.reload('SIGHUP');
}

/** PEM text of a file, with the problem in plain words when it cannot be read. */
export function readPem(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`${what} file ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
  }
  if (!text.includes('-----BEGIN ')) throw new Error(`${what} file ${file}: not PEM (no -----BEGIN line)`);
  return text;
}

/** The first certificate of a PEM file's text. */
export function firstCertificate(pem: string, file: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new Error(`certificate file ${file}: not a readable certificate (${(err as Error).message})`);
  }
}

export class TlsMaterial<T> {
  readonly owner: string;
  readonly #files: MaterialFiles;
  readonly #build: () => T;
  readonly #env: TlsEnv;
  readonly #warnBefore: number;
  readonly #watchers = new Map<string, FSWatcher>();
  #current: T;
  #timer: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #closed = false;
  /** Called with each newly loaded material (after the first). */
  onSwap: ((t: T) => void) | undefined;

  /** Throws (with the file problem) when the first load fails. `owner`: "listener:NAME" or "cluster:NAME". */
  constructor(owner: string, files: MaterialFiles, build: () => T, env: TlsEnv, warnBefore = 7 * 24 * HOUR) {
    this.owner = owner;
    this.#files = files;
    this.#build = build;
    this.#env = env;
    this.#warnBefore = warnBefore;
    this.#current = build();
    this.#track();
    for (const f of new Set(files.watched)) this.#watch(f);
    this.#timer = setInterval(() => this.#track(), HOUR).unref();
    live.add(this as TlsMaterial<unknown>);
    if (!hupInstalled) {
      hupInstalled = true;
      // The CLI reloads the config on SIGHUP too; both run.
      process.on('SIGHUP', reloadAllTlsMaterial);
    }
  }

  get current(): T {
    return this.#current;
  }

  reload(why: string): boolean {
    if (this.#closed) return false;
    let next: T;
    try {
      next = this.#build();
    } catch (err) {
      this.#env.metrics.tlsReloads.get({ owner: this.owner, result: 'failure' }).inc();
      this.#env.logger.error({ owner: this.owner, trigger: why, error: (err as Error).message }, 'TLS files could not be loaded; the previous certificate stays in force');
      return false;
    }
    this.#current = next;
    this.#track();
    this.#env.metrics.tlsReloads.get({ owner: this.owner, result: 'success' }).inc();
    this.#env.logger.info({ owner: this.owner, trigger: why }, 'TLS files reloaded: new handshakes use them');
    this.onSwap?.(next);
    return true;
  }

  close(): void {
    this.#closed = true;
    live.delete(this as TlsMaterial<unknown>);
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
    clearInterval(this.#timer);
    clearTimeout(this.#debounce);
    for (const f of this.#files.certificates) this.#env.metrics.certificatesInForce.delete(`${this.owner}|${f}`);
  }

  /** Expiry gauge entries and the warning, for the certificates now in force. */
  #track(): void {
    for (const file of this.#files.certificates) {
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(readFileSync(file));
      } catch {
        continue; // the material in force was read before; a broken file now is reported by the next reload
      }
      const notAfter = Date.parse(cert.validTo);
      this.#env.metrics.certificatesInForce.set(`${this.owner}|${file}`, { labels: { owner: this.owner, file, serial: cert.serialNumber }, notAfter });
      const left = notAfter - Date.now();
      if (left < this.#warnBefore) {
        this.#env.logger.warn(
          { owner: this.owner, file, serial: cert.serialNumber, not_after: cert.validTo, hours_left: Math.round(left / HOUR) },
          left <= 0 ? 'certificate has expired' : 'certificate expires soon',
        );
      }
    }
  }

  /** Watches the file; editors and secret mounts replace files, so each event re-arms the watch on the new inode. */
  #watch(file: string): void {
    if (this.#closed) return;
    try {
      const w = watch(file, () => {
        w.close();
        this.#watchers.delete(file);
        clearTimeout(this.#debounce);
        // A cert and its key are written one after the other: reload once both are in place.
        this.#debounce = setTimeout(() => {
          for (const f of new Set(this.#files.watched)) if (!this.#watchers.has(f)) this.#watch(f);
          this.reload('file change');
        }, 150).unref();
      });
      w.on('error', () => {});
      w.unref();
      this.#watchers.set(file, w);
    } catch {
      // Missing for a moment (being replaced): the next event or SIGHUP re-arms it.
      setTimeout(() => this.#watch(file), 1000).unref();
    }
  }
}
