// Checks beyond the schema: a file with nothing to serve (an error for `validate` and `run --check`), and the TLS files a config names (every load).
import type { ConfigIssue } from './errors.js';
import tls from 'node:tls';
import type { Config } from './schema.js';
import { firstCertificate, readPem } from '../security/tls-material.js';

/**
 * An empty file, or one without listeners, is valid to the schema (every key has a default) but serves nothing except
 * the admin port: almost always a wrong or truncated file. `validate` calls it an error, as reload refuses such a file.
 */
export function nothingToServeIssues(text: string, config: Config, file: string): ConfigIssue[] {
  if (config.listeners.length > 0) return [];
  const blank = text.split(/\r?\n/).every((l) => /^\s*(#.*)?$/.test(l) || /^(---|\.\.\.)\s*$/.test(l));
  if (blank) return [{ file, line: 1, col: 1, path: '', message: 'the file is empty: a config needs at least one listener' }];
  const lines = text.split(/\r?\n/);
  const at = lines.findIndex((l) => /^listeners\s*:/.test(l));
  return [
    {
      file,
      line: at < 0 ? 1 : at + 1,
      col: 1,
      path: at < 0 ? '' : 'listeners',
      message: 'no listeners: the sidecar would serve nothing but the admin port; add at least one listener',
    },
  ];
}

/**
 * Certificate, key and trust-bundle files named by the config: each must exist, be PEM, and a key must belong to its
 * certificate. Checked on every load (validate, run, reload), so a typo fails with the YAML path, not at a handshake.
 */
export function tlsFileIssues(config: Config): Array<{ path: (string | number)[]; message: string }> {
  const out: Array<{ path: (string | number)[]; message: string }> = [];
  const readable = (path: (string | number)[], file: string, what: string, isCert: boolean): string | undefined => {
    try {
      const pem = readPem(file, what);
      if (isCert) firstCertificate(pem, file);
      return pem;
    } catch (err) {
      out.push({ path, message: (err as Error).message });
      return undefined;
    }
  };
  const pair = (base: (string | number)[], certFile: string, keyFile: string): void => {
    const cert = readable([...base, 'cert'], certFile, 'certificate', true);
    const key = readable([...base, 'key'], keyFile, 'key', false);
    if (cert === undefined || key === undefined) return;
    try {
      tls.createSecureContext({ cert, key });
    } catch (err) {
      const msg = (err as Error).message;
      out.push({ path: [...base, 'key'], message: /mismatch/i.test(msg) ? `key file ${keyFile} does not belong to certificate ${certFile}` : `key file ${keyFile}: ${msg}` });
    }
  };
  config.listeners.forEach((l, li) => {
    const t = l.tls;
    if (!t) return;
    const base = ['listeners', li, 'tls'];
    pair(base, t.cert, t.key);
    t.sni.forEach((s, si) => pair([...base, 'sni', si], s.cert, s.key));
    if (t.client_ca !== undefined) readable([...base, 'client_ca'], t.client_ca, 'client_ca', true);
  });
  config.clusters.forEach((c, ci) => {
    const t = c.tls;
    if (!t) return;
    const base = ['clusters', ci, 'tls'];
    if (t.ca !== undefined) readable([...base, 'ca'], t.ca, 'ca', true);
    if (t.cert !== undefined && t.key !== undefined) pair(base, t.cert, t.key);
  });
  return out;
}
