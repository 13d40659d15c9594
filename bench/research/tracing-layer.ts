// In-process micro-benchmark of the tracing filter's per-request work: the listener layer and the per-attempt layer
// around a stand-in cluster that answers at once with a streamed 12-byte body, read to its end, then the span closed
// as exchange.record() closes it; for an unsampled request (no tail rule), an unsampled one held for
// the tail decision, a sampled one (spans built, the sink discards them) and a mesh hop's request that carries a
// traceparent. Reports CPU µs per request (process.cpuUsage) per round; "no tracing" is the same stack without them.
// Not part of the bench suite: `node dist/bench/research/tracing-layer.js [rounds] [requests]`
import { Readable } from 'node:stream';
import { whenBodyDone } from '../../src/core/body.js';
import { compose, type HttpService, type ProxyRequest } from '../../src/core/service.js';
import { HeaderList } from '../../src/core/headers.js';
import { testRequest } from '../../src/policies/testing.js';
import { tracingSpec, type TracingConfig } from '../../src/filters/tracing/schema.js';
import { compileTracer, tracingAttemptLayer, tracingLayer } from '../../src/filters/tracing/tracing.js';

const ROUNDS = Number(process.argv[2] ?? 5);
const N = Number(process.argv[3] ?? 200_000);
const chunk = Buffer.alloc(12);
const cluster: HttpService = async (req) => {
  // As Cluster does: take the attempt observer at once, and tell it when the body is done.
  const observer = req.context.attemptObserver;
  req.context.attemptObserver = undefined;
  req.context.attempts++;
  req.context.endpoint = '127.0.0.1:28280';
  const body = new Readable({ read() {} });
  body.push(chunk);
  body.push(null);
  if (observer) whenBodyDone(body, () => observer.attemptEnded(200, undefined, body));
  return { status: 200, headers: new HeaderList(['content-length', '12']), body };
};

/** What the exchange does with the answer: reads the body to its end, then records the request (closing its span). */
async function exchange(svc: HttpService, req: ProxyRequest): Promise<void> {
  const res = await svc(req);
  const body = res.body;
  if (body instanceof Readable) {
    const closed = new Promise((resolve) => body.once('close', resolve));
    body.resume();
    await closed;
  }
  req.context.spans?.end(req.context, res.status);
}

function stack(cfg: Partial<TracingConfig> | undefined): HttpService {
  if (cfg === undefined) return cluster;
  const config = { ...tracingSpec.schema.parse(tracingSpec.defaults), sampling_ratio: 0.01, ...cfg };
  const tracer = compileTracer(config, { sink: { add() {} } });
  return compose([tracingLayer(tracer)], compose([tracingAttemptLayer], cluster));
}

const APP = ['host', '127.0.0.1:28201', 'user-agent', 'wrk', 'accept', '*/*'];
const HOP = [...APP, 'traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00'];
const variants: Array<[string, HttpService, readonly string[]]> = [
  ['no tracing', stack(undefined), APP],
  ['unsampled', stack({}), APP],
  ['unsampled, tail rule on', stack({ always_sample: { errors: true, slower_than: 500 } }), APP],
  ['sampled', stack({ sampling_ratio: 1 }), APP],
  ['unsampled parent (mesh hop)', stack({}), HOP],
];

const request = (headers: readonly string[]): ProxyRequest => testRequest({ startTime: performance.now(), headers: [...headers] });
const rows = new Map<string, number[]>(variants.map(([name]) => [name, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, svc, headers] of variants) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < N; i++) await exchange(svc, request(headers));
    const c = process.cpuUsage(c0);
    rows.get(name)!.push((c.user + c.system) / N);
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const base = median(rows.get('no tracing')!);
process.stdout.write(`tracing layers: ${ROUNDS} rounds x ${N} requests, medians\n| request | CPU µs | over no tracing |\n|---|---|---|\n`);
for (const [name, us] of rows) process.stdout.write(`| ${name} | ${median(us).toFixed(2)} | ${(median(us) - base).toFixed(2)} |\n`);
