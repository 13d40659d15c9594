// The tracing layers without sockets: a stand-in cluster behind the per-attempt layer, ids from a counter and a
// settable clock; checks spans, parent links, propagation headers and the head and tail sampling decisions.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProxyError } from '../../core/errors.js';
import { HeaderList } from '../../core/headers.js';
import { compose, type HttpService, type ProxyRequest, type ProxyResponse } from '../../core/service.js';
import { testRequest } from '../../policies/testing.js';
import { localResponse } from '../../http-server/exchange.js';
import type { IdSource } from './ids.js';
import { tracingSpec, type TracingConfig } from './schema.js';
import type { SpanRecord } from './span.js';
import { compileTracer, sharedExporter, tracingAttemptLayer, tracingLayer } from './tracing.js';
import { SidecarMetrics } from '../../observability/catalogue.js';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const P = '00f067aa0ba902b7';

function counterIds(): IdSource {
  let n = 0;
  return {
    traceId: () => (++n).toString(16).padStart(32, 'a'),
    spanId: () => (++n).toString(16).padStart(16, 'b'),
  };
}

interface Sent {
  readonly headers: Record<string, string | string[]>;
}

/**
 * A cluster stand-in: takes the attempt observer and counts the attempt before its first await, and reports the
 * attempt's end, as Cluster does.
 */
function cluster(answers: Array<number | ProxyError>, sent: Sent[]): HttpService {
  let i = 0;
  return async (req) => {
    const ctx = req.context;
    const observer = ctx.attemptObserver;
    ctx.attemptObserver = undefined;
    ctx.attempts++;
    ctx.endpoint = `10.0.0.${ctx.attempts}:8080`;
    sent.push({ headers: req.headers.toObject() });
    const a = answers[Math.min(i++, answers.length - 1)]!;
    await Promise.resolve();
    if (a instanceof ProxyError) {
      observer?.attemptEnded(a.status, a, null);
      throw a;
    }
    observer?.attemptEnded(a, undefined, null);
    return { status: a, headers: new HeaderList(), body: null };
  };
}

/** A retry stand-in: sends again while the answer is 503. */
const retryOn503 = (max: number): ((next: HttpService) => HttpService) => (next) => async (req) => {
  let res: ProxyResponse | undefined;
  for (let n = 0; n < max; n++) {
    res = await next(req);
    if (res.status !== 503) break;
  }
  return res!;
};

function setup(cfg: Partial<TracingConfig>, answers: Array<number | ProxyError>, opts: { retries?: number } = {}) {
  const spans: SpanRecord[] = [];
  let clock = 0;
  const config = { ...tracingSpec.schema.parse(tracingSpec.defaults), ...cfg };
  const tracer = compileTracer(config, { sink: { add: (s) => spans.push(s) }, ids: counterIds(), now: () => clock });
  const sent: Sent[] = [];
  const attempts = compose([tracingAttemptLayer], cluster(answers, sent));
  const svc = compose([tracingLayer(tracer)], opts.retries ? retryOn503(opts.retries)(attempts) : attempts);
  return { spans, sent, svc, advance: (ms: number) => (clock += ms) };
}

/** Sends the request as the exchange does: a failure becomes the sidecar's local answer, then the span is closed. */
const run = async (svc: HttpService, req: ProxyRequest): Promise<number> => {
  let status: number;
  try {
    status = (await svc(req)).status;
  } catch (e) {
    status = localResponse(req.context, e).status;
  }
  req.context.spans?.end(req.context, status);
  return status;
};

describe('tracing layers', () => {
  it('a request without a parent starts a trace: a server span, a client span under it, and the upstream names the client span', async () => {
    const { spans, sent, svc } = setup({ sampling_ratio: 1 }, [200]);
    const req = testRequest({ headers: ['user-agent', 'x'] });
    assert.equal(await run(svc, req), 200);
    assert.equal(spans.length, 2);
    const [server, client] = spans as [SpanRecord, SpanRecord];
    assert.equal(server.kind, 1);
    assert.equal(client.kind, 2);
    assert.equal(server.parentSpanId, undefined);
    assert.equal(client.parentSpanId, server.spanId);
    assert.equal(client.traceId, server.traceId);
    assert.equal(sent[0]!.headers.traceparent, `00-${server.traceId}-${client.spanId}-01`);
    assert.equal(req.context.traceId, server.traceId);
    assert.equal(req.context.spanId, server.spanId);
    assert.equal(server.attributes['http.response.status_code'], 200);
    assert.equal(server.attributes['http.request.method'], 'GET');
    assert.equal(server.attributes['url.path'], '/x');
    assert.equal(client.attributes['server.address'], '10.0.0.1');
    assert.equal(client.attributes['server.port'], 8080);
    assert.equal(client.attributes['sidecar.attempt'], 1);
    assert.equal(client.attributes['sidecar.retry'], false);
    assert.equal(server.error, false);
  });

  it("a valid traceparent is the server span's remote parent; its tracestate goes on; an invalid one starts a new trace", async () => {
    const { spans, sent, svc } = setup({}, [200]);
    await run(svc, testRequest({ headers: ['traceparent', `00-${T}-${P}-01`, 'tracestate', 'k=v'] }));
    const server = spans[0]!;
    assert.equal(server.traceId, T);
    assert.equal(server.parentSpanId, P);
    assert.equal(server.parentRemote, true);
    assert.equal(sent[0]!.headers.tracestate, 'k=v');
    assert.match(String(sent[0]!.headers.traceparent), new RegExp(`^00-${T}-[0-9a-f]{16}-01$`));

    await run(svc, testRequest({ headers: ['traceparent', `00-${'0'.repeat(32)}-${P}-01`, 'tracestate', 'k=v'] }));
    const fresh = spans[2]!;
    assert.notEqual(fresh.traceId, T);
    assert.equal(fresh.parentSpanId, undefined);
    assert.equal(sent[1]!.headers.tracestate, undefined, 'no tracestate without a valid traceparent');

    // Two traceparent headers (two parents) are invalid: a new trace, and one traceparent upstream.
    await run(svc, testRequest({ headers: ['traceparent', `00-${T}-${P}-01`, 'traceparent', `00-${'1'.repeat(32)}-${P}-01`, 'tracestate', 'k=v'] }));
    const dup = spans[4]!;
    assert.notEqual(dup.traceId, T);
    assert.equal(dup.parentSpanId, undefined);
    assert.match(String(sent[2]!.headers.traceparent), new RegExp(`^00-${dup.traceId}-[0-9a-f]{16}-01$`));
    assert.equal(sent[2]!.headers.tracestate, undefined);
  });

  it('tracestate: several headers go on as one list; an invalid one is dropped; an oversized one is cut to 512 characters, in the spans too', async () => {
    const { spans, sent, svc } = setup({}, [200]);
    const tp = `00-${T}-${P}-01`;
    await run(svc, testRequest({ headers: ['traceparent', tp, 'tracestate', 'a=1', 'tracestate', 'b=2'] }));
    assert.equal(sent[0]!.headers.tracestate, 'a=1,b=2');
    assert.equal(spans[0]!.traceState, 'a=1,b=2');
    await run(svc, testRequest({ headers: ['traceparent', tp, 'tracestate', 'A B=c,,=,'] }));
    assert.equal(sent[1]!.headers.tracestate, undefined, 'an invalid tracestate is not passed through');
    assert.equal(spans[2]!.traceState, undefined);
    const many = Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',');
    await run(svc, testRequest({ headers: ['traceparent', tp, 'tracestate', many] }));
    assert.equal(sent[2]!.headers.tracestate, undefined, 'more than 32 members');
    const big = Array.from({ length: 30 }, (_, i) => `k${i}=${'v'.repeat(60)}`).join(',');
    await run(svc, testRequest({ headers: ['traceparent', tp, 'tracestate', big] }));
    const cut = String(sent[3]!.headers.tracestate);
    assert.ok(cut.length <= 512 && cut.startsWith('k0='), `${cut.length}`);
    assert.equal(spans[6]!.traceState, cut, 'a span carries what went upstream, not the 2 KB the caller sent');
  });

  it('B3 in (single and multi); W3C always out, and B3 when configured, naming the client span', async () => {
    const { spans, sent, svc } = setup({ propagation: ['w3c', 'b3', 'b3multi'] }, [200]);
    await run(svc, testRequest({ headers: ['b3', `${T}-${P}-1`] }));
    await run(svc, testRequest({ headers: ['x-b3-traceid', T, 'x-b3-spanid', P, 'x-b3-sampled', '1'] }));
    for (const i of [0, 1]) {
      const [server, client] = [spans[2 * i]!, spans[2 * i + 1]!];
      assert.equal(server.traceId, T);
      assert.equal(server.parentSpanId, P);
      const h = sent[i]!.headers;
      assert.equal(h.traceparent, `00-${T}-${client.spanId}-01`);
      assert.equal(h.b3, `${T}-${client.spanId}-1`);
      assert.equal(h['x-b3-spanid'], client.spanId);
      assert.equal(h['x-b3-parentspanid'], server.spanId);
      assert.equal(h['x-b3-sampled'], '1');
    }
    const { sent: plain, svc: w3cOnly } = setup({}, [200]);
    await run(w3cOnly, testRequest({ headers: ['b3', `${T}-${P}-1`] }));
    assert.equal(plain[0]!.headers.b3, undefined, "the caller's b3 does not reach the upstream beside our traceparent");
    // A W3C parent wins over B3, and the caller's B3 headers (naming the caller's span) still go: single, multi, or a
    // lone sampling decision.
    await run(w3cOnly, testRequest({ headers: ['traceparent', `00-${T}-${P}-01`, 'b3', `${T}-${P}-1`, 'x-b3-traceid', T, 'x-b3-spanid', P, 'x-b3-sampled', '1'] }));
    await run(w3cOnly, testRequest({ headers: ['b3', '0', 'X-B3-Flags'.toLowerCase(), '1'] }));
    for (const i of [1, 2]) {
      const names = Object.keys(plain[i]!.headers);
      assert.deepEqual(names.filter((n) => n === 'b3' || n.startsWith('x-b3-')), [], `request ${i}: ${names.join()}`);
    }
  });

  it('a B3 decision without a parent (b3: 0, X-B3-Sampled: 0) is followed: not sampled, and the upstream is told so', async () => {
    const { spans, sent, svc } = setup({ sampling_ratio: 1, propagation: ['w3c', 'b3'] }, [200]);
    await run(svc, testRequest({ headers: ['b3', '0'] }));
    await run(svc, testRequest({ headers: ['x-b3-sampled', '0'] }));
    assert.equal(spans.length, 0, 'nothing recorded for a caller that said "do not sample"');
    for (const h of [sent[0]!.headers, sent[1]!.headers]) {
      assert.match(String(h.traceparent), /-00$/);
      assert.match(String(h.b3), /-0$/);
    }
    const ratio0 = setup({ sampling_ratio: 0 }, [200]);
    await run(ratio0.svc, testRequest({ headers: ['b3', 'd'] }));
    assert.equal(ratio0.spans.length, 2, 'b3: d (debug) samples whatever the ratio');
  });

  it('retries are sibling client spans, numbered and marked', async () => {
    const { spans, svc } = setup({}, [503, 200], { retries: 3 });
    assert.equal(await run(svc, testRequest()), 200);
    const server = spans[0]!;
    const clients = spans.slice(1);
    assert.equal(clients.length, 2);
    assert.deepEqual(clients.map((c) => c.parentSpanId), [server.spanId, server.spanId]);
    assert.deepEqual(clients.map((c) => c.attributes['sidecar.attempt']), [1, 2]);
    assert.deepEqual(clients.map((c) => c.attributes['sidecar.retry']), [false, true]);
    assert.deepEqual(clients.map((c) => c.attributes['http.response.status_code']), [503, 200]);
    assert.equal(clients[0]!.error, true);
    assert.equal(clients[0]!.attributes['error.type'], '503');
    assert.notEqual(clients[0]!.spanId, clients[1]!.spanId);
    assert.equal(server.attributes['sidecar.attempt'], 2);
  });

  it('a hedge gets its own header list naming its own span, and is marked', async () => {
    const spans: SpanRecord[] = [];
    const tracer = compileTracer(tracingSpec.schema.parse(tracingSpec.defaults), { sink: { add: (s) => spans.push(s) }, ids: counterIds() });
    const sent: Sent[] = [];
    const attempt = compose([tracingAttemptLayer], cluster([200], sent));
    // Two attempts at once, the second marked as the hedge (what the hedge layer sends).
    const svc = tracingLayer(tracer)(async (req) => {
      const [a] = await Promise.all([attempt(req), attempt({ ...req, hedge: true } as ProxyRequest)]);
      return a;
    });
    await run(svc, testRequest());
    const clients = spans.filter((s) => s.kind === 2);
    assert.equal(clients.length, 2);
    assert.deepEqual(clients.map((c) => c.attributes['sidecar.hedge']).sort(), [false, true]);
    assert.notEqual(sent[0]!.headers.traceparent, sent[1]!.headers.traceparent);
  });

  it('ratio 0: nothing recorded, but the upstream is told (flags 00); with always_sample, failed and slow requests are kept', async () => {
    const off = setup({ sampling_ratio: 0 }, [200]);
    await run(off.svc, testRequest());
    assert.equal(off.spans.length, 0);
    assert.match(String(off.sent[0]!.headers.traceparent), /-00$/);

    const tail = setup({ sampling_ratio: 0, always_sample: { errors: true, slower_than: 100 } }, [200, 503, new ProxyError('UF', 'connect refused', { outcome: 'not-sent', code: 'connect-refused' })]);
    await run(tail.svc, testRequest());
    assert.equal(tail.spans.length, 0, 'a fast success is not kept');
    await run(tail.svc, testRequest());
    assert.equal(tail.spans.length, 2, 'a 503 is kept with its client span');
    assert.equal(tail.spans[0]!.error, true);
    const failed = tail.spans.length;
    await run(tail.svc, testRequest());
    const kept = tail.spans.slice(failed);
    assert.equal(kept.length, 2, 'a sidecar failure (UF) is kept');
    const server = kept.find((s) => s.kind === 1)!;
    assert.equal(server.attributes['http.response.status_code'], 503);
    assert.equal(server.attributes['sidecar.response_flags'], 'UF');
    assert.equal(server.attributes['error.type'], 'connect-refused', 'the cause code, as the access log has it');
    assert.match(String(server.message), /connect refused/);
    assert.equal(kept.find((s) => s.kind === 2)!.attributes['error.type'], 'connect-refused');

    const slow = setup({ sampling_ratio: 0, always_sample: { errors: true, slower_than: 100 } }, [200]);
    const svc = slow.svc;
    const req = testRequest();
    const p = run(
      compose([(next) => async (q) => {
        slow.advance(150);
        return next(q);
      }], svc),
      req,
    );
    await p;
    assert.equal(slow.spans.length, 2, 'a slow success is kept');
  });

  it('a parent that said "not sampled" is followed whatever the ratio', async () => {
    const { spans, sent, svc } = setup({ sampling_ratio: 1 }, [200]);
    await run(svc, testRequest({ headers: ['traceparent', `00-${T}-${P}-00`] }));
    assert.equal(spans.length, 0);
    assert.match(String(sent[0]!.headers.traceparent), new RegExp(`^00-${T}-[0-9a-f]{16}-00$`));
  });
});

describe('shared exporters', () => {
  it('one per export config, shared by every filter built with it; the oldest of many configs is let go', () => {
    const metrics = new SidecarMetrics();
    const cfg = (n: number): TracingConfig => ({ ...tracingSpec.schema.parse(tracingSpec.defaults), otlp: { endpoint: `http://127.0.0.1:${4000 + n}/v1/traces`, timeout: 1000, headers: {} } });
    const first = sharedExporter(cfg(0), metrics);
    assert.equal(sharedExporter(cfg(0), metrics), first, 'the same config shares one exporter');
    for (let n = 1; n <= 8; n++) sharedExporter(cfg(n), metrics); // nine configs in all
    assert.notEqual(sharedExporter(cfg(0), metrics), first, 'the oldest was dropped, a new one is made for it');
  });
});
