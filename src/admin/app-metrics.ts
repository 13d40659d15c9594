// Metrics merging (admin.metrics.merge_app): on each scrape of /metrics, fetch the app's own metrics endpoint (bounded
// in time and size), parse it, and label its series so one scrape target covers the pod. A failure of the app leaves
// its series out and is reported by sidecar_app_metrics_scrape_ok; it never fails the sidecar's scrape.
import http from 'node:http';
import { ExpositionError, formatOfContentType, parse, withLabel, type Family } from '../observability/exposition.js';

export interface MergeAppOptions {
  readonly url: string;
  /** Milliseconds. */
  readonly timeout: number;
  readonly max_bytes: number;
  readonly label_name: string;
  readonly label_value: string;
}

export type AppScrape = { readonly ok: true; readonly families: Family[]; readonly seconds: number } | { readonly ok: false; readonly error: string; readonly seconds: number };

/** Prometheus text first: every client library speaks it, and the sidecar re-renders in the scraper's format anyway. */
const ACCEPT = 'text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1';

export async function scrapeApp(opts: MergeAppOptions): Promise<AppScrape> {
  const began = performance.now();
  const seconds = (): number => (performance.now() - began) / 1000;
  try {
    const { body, type } = await get(opts.url, opts.timeout, opts.max_bytes);
    const families = withLabel(parse(body, formatOfContentType(type)), opts.label_name, opts.label_value);
    return { ok: true, families, seconds: seconds() };
  } catch (err) {
    const why = err instanceof ExpositionError ? `unparseable metrics: ${err.message}` : (err as Error).message;
    return { ok: false, error: why, seconds: seconds() };
  }
}

function get(url: string, timeout: number, maxBytes: number): Promise<{ body: string; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: ACCEPT }, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`the app answered ${res.statusCode}`));
        return;
      }
      const declared = Number(res.headers['content-length']);
      if (declared > maxBytes) {
        req.destroy();
        reject(new Error(`the app's metrics are ${declared} bytes, over max_bytes ${maxBytes}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) {
          req.destroy(new Error(`the app's metrics are over max_bytes ${maxBytes}`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve({ body: Buffer.concat(chunks).toString('utf8'), type: res.headers['content-type'] }));
      res.on('error', reject);
      res.on('close', () => reject(new Error('the app closed the connection before the end of its metrics')));
    });
    // One deadline for the whole exchange, not an idle timeout: a slow trickle must not hold the scrape.
    const timer = setTimeout(() => req.destroy(new Error(`the app did not answer within ${timeout} ms`)), timeout);
    req.on('error', reject);
    req.on('close', () => clearTimeout(timer));
  });
}
