// In-process micro-benchmark of what observability adds per request: drives the real exchange.record(), access-log
// line, debug ring, latency history and the cluster's attempt note with realistic contexts, and reports CPU µs/op
// (process.cpuUsage: every thread, so GC helpers and the fs threadpool count) and GC pauses per variant.
// Variants run interleaved, in rounds, so drift on a busy machine hits each alike. Not part of the bench suite.
// `node dist/bench/research/observability-record.js [rounds] [opsPerRound]`
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { setImmediate as tick } from 'node:timers/promises';
import { HeaderList } from '../../src/core/headers.js';
import { newContext, record, type ServerDeps } from '../../src/http-server/exchange.js';
import { compileAccessLog, createAccessLog, DEFAULT_ACCESS_LOG, noAccessLog, type AccessLog } from '../../src/observability/access-log.js';
import { SidecarMetrics } from '../../src/observability/catalogue.js';
import { DEFAULT_DEBUG_REQUESTS, noteAttempt, responseOutcome } from '../../src/observability/request-debug.js';

const ROUNDS = Number(process.argv[2] ?? 5);
const OPS = Number(process.argv[3] ?? 20000);
/** Short-lived garbage per request, as the rest of the proxy makes it (about 12 KB per request in the real process). */
const GARBAGE = Number(process.env.GARBAGE_KB ?? 12);

const dir = mkdtempSync(path.join(os.tmpdir(), 'obs-record-'));
const fileLog = createAccessLog(path.join(dir, 'access.log'), compileAccessLog(DEFAULT_ACCESS_LOG));

interface Variant {
  readonly name: string;
  readonly deps: ServerDeps;
}

function variant(name: string, accessLog: boolean, debug: boolean): Variant {
  const metrics = new SidecarMetrics();
  metrics.debugRequests.configure({ ...DEFAULT_DEBUG_REQUESTS, enabled: debug });
  const log: AccessLog = accessLog ? fileLog : noAccessLog;
  const deps = { current: () => undefined, metrics, accessLog: () => log, logger: undefined, connector: undefined } as unknown as ServerDeps;
  return { name, deps };
}

const variants = [variant('off', false, false), variant('access log', true, false), variant('debug ring', false, true), variant('both', true, true)];
const stats = variants.map((v) => v.deps.metrics.routeStats('bench', 'all', 'upstream'));

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

async function run(v: Variant, st: (typeof stats)[number], ops: number): Promise<{ us: number; gcMs: number; gcCount: number }> {
  const debug = v.deps.metrics.debugRequests;
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
for (const [i, v] of variants.entries()) await run(v, stats[i]!, OPS / 4);
for (let r = 0; r < ROUNDS; r++) {
  // Rotate the order each round.
  for (let k = 0; k < variants.length; k++) {
    const i = (k + r) % variants.length;
    const v = variants[i]!;
    const out = await run(v, stats[i]!, OPS);
    const res = results.get(v.name)!;
    res.us.push(out.us);
    res.gcMs.push(out.gcMs);
    res.gcCount.push(out.gcCount);
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const off = median(results.get('off')!.us);
process.stdout.write(`observability record(): ${ROUNDS} rounds x ${OPS} ops, ${GARBAGE} KB garbage/op; medians\n| variant | CPU µs/op | over off | GC ms/round | GCs/round |\n|---|---|---|---|---|\n`);
for (const [name, r] of results) {
  const us = median(r.us);
  process.stdout.write(`| ${name} | ${us.toFixed(2)} | ${(us - off).toFixed(2)} | ${median(r.gcMs).toFixed(1)} | ${median(r.gcCount)} |\n`);
}
fileLog.close();
rmSync(dir, { recursive: true, force: true });
if (sink < 0) process.stdout.write('');
