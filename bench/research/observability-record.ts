// In-process micro-benchmark of what observability adds per request: drives the real exchange.record(), access-log
// line, debug ring, latency history and the cluster's attempt note with realistic contexts, and reports CPU µs/op
// (process.cpuUsage: every thread, so GC helpers and the fs threadpool count) and GC pauses per variant.
// Variants run interleaved, in rounds, so drift on a busy machine hits each alike. Not part of the bench suite.
// `node dist/bench/research/observability-record.js [rounds] [opsPerRound] [--root other/dist]...`
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { setImmediate as tick } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { HeaderList as HeaderListT } from '../../src/core/headers.js';
import type * as Exchange from '../../src/http-server/exchange.js';
import type * as AccessLogModule from '../../src/observability/access-log.js';
import type * as Catalogue from '../../src/observability/catalogue.js';
import type * as RequestDebug from '../../src/observability/request-debug.js';

/** Builds (dist folders) to compare, each loaded as its own module graph: `--root dist-a --root dist-b`. */
const roots: string[] = [];
for (let i = 2; i < process.argv.length; i++) if (process.argv[i] === '--root') roots.push(path.resolve(process.argv[++i]!));
process.argv = process.argv.filter((a, i, all) => a !== '--root' && all[i - 1] !== '--root');
if (roots.length === 0) roots.push(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..'));

interface Build {
  readonly root: string;
  readonly HeaderList: new (raw: string[]) => HeaderListT;
  readonly exchange: typeof Exchange;
  readonly accessLog: typeof AccessLogModule;
  readonly catalogue: typeof Catalogue;
  readonly debug: typeof RequestDebug;
}

async function load(root: string): Promise<Build> {
  const m = (p: string): string => path.join(root, 'src', p);
  return {
    root,
    HeaderList: ((await import(m('core/headers.js'))) as { HeaderList: Build['HeaderList'] }).HeaderList,
    exchange: (await import(m('http-server/exchange.js'))) as typeof Exchange,
    accessLog: (await import(m('observability/access-log.js'))) as typeof AccessLogModule,
    catalogue: (await import(m('observability/catalogue.js'))) as typeof Catalogue,
    debug: (await import(m('observability/request-debug.js'))) as typeof RequestDebug,
  };
}
const builds = await Promise.all(roots.map(load));

const ROUNDS = Number(process.argv[2] ?? 5);
const OPS = Number(process.argv[3] ?? 20000);
/** Short-lived garbage per request, as the rest of the proxy makes it (about 12 KB per request in the real process). */
const GARBAGE = Number(process.env.GARBAGE_KB ?? 12);

const dir = mkdtempSync(path.join(os.tmpdir(), 'obs-record-'));

interface Variant {
  readonly name: string;
  readonly build: Build;
  readonly deps: Exchange.ServerDeps;
  readonly stats: Catalogue.RouteStats;
}

/**
 * OBS_RECORD_LOG=/dev/null: the access log written there instead of a temp file, to read the encoding alone (on a VM
 * that hands freed pages back to its host, every page a growing file takes costs a fault the sidecar did not cause).
 */
const LOG_TO = process.env.OBS_RECORD_LOG;
function variant(b: Build, name: string, accessLog: boolean, debug: boolean): Variant {
  const metrics = new b.catalogue.SidecarMetrics();
  metrics.debugRequests.configure({ ...b.debug.DEFAULT_DEBUG_REQUESTS, enabled: debug });
  const log: AccessLogModule.AccessLog = accessLog
    ? b.accessLog.createAccessLog(LOG_TO ?? path.join(dir, `access-${builds.indexOf(b)}.log`), b.accessLog.compileAccessLog(b.accessLog.DEFAULT_ACCESS_LOG))
    : b.accessLog.noAccessLog;
  const deps = { current: () => undefined, metrics, accessLog: () => log, logger: undefined, connector: undefined } as unknown as Exchange.ServerDeps;
  const label = builds.length > 1 ? `${path.basename(path.dirname(b.root))}/${path.basename(b.root)} ${name}` : name;
  return { name: label, build: b, deps, stats: metrics.routeStats('bench', 'all', 'upstream') };
}

const variants = builds.flatMap((b) => [variant(b, 'off', false, false), variant(b, 'access log', true, false), variant(b, 'debug ring', false, true), variant(b, 'both', true, true)]);

let sink = 0;
function garbage(): void {
  // Small objects and strings, like parsing and header handling leave behind.
  for (let i = 0; i < GARBAGE * 8; i++) {
    const o = { a: i, b: `x${i}`, c: [i, i + 1] };
    sink += o.c.length;
  }
}

const gc = { count: 0, ms: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gc.count++;
    gc.ms += e.duration;
  }
}).observe({ entryTypes: ['gc'] });

async function run(v: Variant, ops: number): Promise<{ us: number; gcMs: number; gcCount: number }> {
  const debug = v.deps.metrics.debugRequests;
  const { HeaderList } = v.build;
  const { newContext, record } = v.build.exchange;
  const { noteAttempt, responseOutcome } = v.build.debug;
  const st = v.stats;
  const g0 = { ...gc };
  const c0 = process.cpuUsage();
  for (let i = 0; i < ops; i++) {
    const headers = new HeaderList(['host', 'svc.local', 'user-agent', 'wrk/4.2', 'accept', '*/*']);
    const ctx = newContext('bench', '127.0.0.1:54321', 'HTTP/1.1', undefined);
    ctx.route = 'all';
    ctx.cluster = 'upstream';
    ctx.endpoint = '127.0.0.1:28280';
    ctx.attempts++;
    // What cluster.#send adds when the debug ring is on.
    const began = debug.enabled ? performance.now() : 0;
    garbage();
    if (debug.enabled) noteAttempt(ctx, { endpoint: ctx.endpoint, start: began - ctx.startTime, duration: performance.now() - began, outcome: responseOutcome(200), status: 200 });
    const failed = i % 100 === 0;
    if (failed) ctx.flag = 'UF';
    if (failed) ctx.error = 'upstream connect error: connection refused';
    record(v.deps, st, { method: 'GET', authority: 'svc.local', path: `/orders/${i % 1000}?page=2`, userAgent: 'wrk/4.2', headers }, ctx, failed ? 503 : 200, 0, 12);
    // Let the line writer's writes and timers run, as the event loop would between requests.
    if (i % 50 === 49) await tick();
  }
  const c = process.cpuUsage(c0);
  return { us: (c.user + c.system) / ops, gcMs: gc.ms - g0.ms, gcCount: gc.count - g0.count };
}

const results = new Map<string, { us: number[]; gcMs: number[]; gcCount: number[] }>(variants.map((v) => [v.name, { us: [], gcMs: [], gcCount: [] }]));
// Warm-up: JIT every path.
for (const v of variants) await run(v, OPS / 4);
for (let r = 0; r < ROUNDS; r++) {
  // Rotate the order each round.
  for (let k = 0; k < variants.length; k++) {
    const v = variants[(k + r) % variants.length]!;
    const out = await run(v, OPS);
    const res = results.get(v.name)!;
    res.us.push(out.us);
    res.gcMs.push(out.gcMs);
    res.gcCount.push(out.gcCount);
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

process.stdout.write(`observability record(): ${ROUNDS} rounds x ${OPS} ops, ${GARBAGE} KB garbage/op; medians (min)\n| variant | CPU µs/op | over off | GC ms/round |\n|---|---|---|---|\n`);
for (const [i, v] of variants.entries()) {
  const r = results.get(v.name)!;
  const off = results.get(variants[i - (i % 4)]!.name)!;
  const us = median(r.us);
  const min = Math.min(...r.us);
  process.stdout.write(`| ${v.name} | ${us.toFixed(2)} (${min.toFixed(2)}) | ${(us - median(off.us)).toFixed(2)} (${(min - Math.min(...off.us)).toFixed(2)}) | ${median(r.gcMs).toFixed(1)} |\n`);
}
for (const v of variants) v.deps.accessLog().close();
rmSync(dir, { recursive: true, force: true });
if (sink < 0) process.stdout.write('');
