// The /dashboard/events ticker: one interval shared by every connected browser, started by the first and stopped
// by the last, so with no one watching the dashboard costs nothing (no timer, no snapshot built).
import type http from 'node:http';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { buildPayload, type Answers, type HistorySnapshot, type Totals } from './payload.js';

/** The success rate covers this many ticks (10 s at one a second): steadier than one tick, still live. */
const SUCCESS_WINDOW = 10;
import type { DebugRequests } from '../../observability/request-debug.js';

export interface DashboardSource {
  history(): HistorySnapshot;
  debugRequests(): DebugRequests;
  clusters(): unknown;
  /** Attempts sent upstream so far, when counted (else the rate is estimated from the recorded requests). */
  upstreamAttempts?(): number | undefined;
  /** Answers given and failed so far, for the success rate over the last ticks. */
  answers?(): Answers;
  /** Whether latency history is kept (admin.latency_history.enabled); absent: it is. */
  historyEnabled?(): boolean;
  now(): number;
}

export class DashboardEvents {
  readonly #clients = new Set<http.ServerResponse>();
  #timer: NodeJS.Timeout | undefined;
  #prev: Totals | undefined;
  /** The totals of the last SUCCESS_WINDOW ticks, oldest first. */
  readonly #window: Totals[] = [];
  readonly #source: DashboardSource;
  readonly #periodMs: number;

  constructor(source: DashboardSource, periodMs = 1000) {
    this.#source = source;
    this.#periodMs = periodMs;
  }

  get clients(): number {
    return this.#clients.size;
  }

  get running(): boolean {
    return this.#timer !== undefined;
  }

  attach(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    this.#clients.add(res);
    const gone = (): void => {
      this.#clients.delete(res);
      if (this.#clients.size === 0 && this.#timer) {
        clearInterval(this.#timer);
        this.#timer = undefined;
        this.#prev = undefined;
        this.#window.length = 0;
      }
    };
    req.on('close', gone);
    res.on('close', gone);
    this.#tick([res]);
    this.#timer ??= setInterval(() => this.#tick([...this.#clients]), this.#periodMs);
  }

  #tick(to: http.ServerResponse[]): void {
    const d = this.#source.debugRequests();
    const list = d.config.enabled ? d.list() : { failed: [], recent: [] };
    const p = buildPayload(this.#source.history(), list, this.#source.clusters(), this.#prev, this.#source.now(), 10, this.#source.upstreamAttempts?.(), this.#source.answers?.(), this.#window[0]);
    if (this.#source.historyEnabled?.() === false) p.historyOff = true;
    this.#prev = p.totals;
    this.#window.push(p.totals);
    if (this.#window.length > SUCCESS_WINDOW) this.#window.shift();
    const frame = `data: ${JSON.stringify(p)}\n\n`;
    for (const res of to) res.write(frame);
  }

  close(): void {
    for (const res of this.#clients) res.end();
    this.#clients.clear();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

let assets: { js: string; css: string } | undefined;
/** uPlot's dist files, read from the installed package the first time the page is asked for (not at CLI start). */
export function uplotAssets(): { js: string; css: string } {
  if (!assets) {
    const require = createRequire(import.meta.url);
    const dir = require.resolve('uplot/package.json').replace(/package\.json$/, '');
    assets = { js: readFileSync(`${dir}dist/uPlot.iife.min.js`, 'utf8'), css: readFileSync(`${dir}dist/uPlot.min.css`, 'utf8') };
  }
  return assets;
}
