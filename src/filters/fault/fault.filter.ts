// Fault injection: delays and/or aborts a share of a route's requests (or those whose headers ask, when allowed),
// to test how callers cope with a slow or failing service. An aborted request is answered with the status and flag FI.
import type { FaultConfig } from '../../config/schema.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { ProxyError } from '../../core/errors.js';
import type { Layer, ProxyRequest } from '../../core/service.js';
import type { Counter } from '../../observability/metrics.js';
import type { FilterFactory } from '../filter.js';

/** Request headers that ask for a fault when header_control is on. */
export const FAULT_DELAY_HEADER = 'x-sidecar-fault-delay-ms';
export const FAULT_ABORT_HEADER = 'x-sidecar-fault-abort';
/** A header-requested delay is capped so a stray header cannot park a request for hours. */
export const MAX_HEADER_DELAY_MS = 60_000;

export interface FaultCounters {
  readonly delay: Counter;
  readonly abort: Counter;
}

export interface FaultDeps {
  readonly random?: () => number;
  readonly clock?: Clock;
}

/** The fault to apply to one request, decided before anything is forwarded. */
export interface FaultDecision {
  readonly delayMs: number;
  readonly abortStatus: number | undefined;
}

/** Pure: which fault (if any) a request gets, from the config, its headers and a random source. */
export function decideFault(cfg: FaultConfig, header: (name: string) => string | undefined, random: () => number): FaultDecision {
  let delayMs = 0;
  let abortStatus: number | undefined;
  if (cfg.header_control) {
    const d = header(FAULT_DELAY_HEADER);
    if (d !== undefined && /^\d+$/.test(d.trim())) delayMs = Math.min(Number(d.trim()), MAX_HEADER_DELAY_MS);
    const a = header(FAULT_ABORT_HEADER);
    if (a !== undefined && /^\d{3}$/.test(a.trim())) {
      const status = Number(a.trim());
      if (status >= 200 && status <= 599) abortStatus = status;
    }
  }
  if (delayMs === 0 && cfg.delay && hit(cfg.delay.percent, random)) delayMs = cfg.delay.duration;
  if (abortStatus === undefined && cfg.abort && hit(cfg.abort.percent, random)) abortStatus = cfg.abort.status;
  return { delayMs, abortStatus };
}

const hit = (percent: number, random: () => number): boolean => percent >= 100 || (percent > 0 && random() * 100 < percent);

/** `counters` is called once, only when the route has a fault block, so routes without one export no fault series. */
export function faultLayer(cfg: FaultConfig | undefined, counters: () => FaultCounters, deps: FaultDeps = {}): Layer {
  if (!cfg) return (next) => next;
  const { delay, abort } = counters();
  const random = deps.random ?? Math.random;
  const clock = deps.clock ?? systemClock;
  return (next) => async (req) => {
    const fault = decideFault(cfg, (n) => req.headers.get(n), random);
    if (cfg.header_control) {
      req.headers.remove(FAULT_DELAY_HEADER);
      req.headers.remove(FAULT_ABORT_HEADER);
    }
    if (fault.delayMs > 0) {
      delay.inc();
      await sleep(req, fault.delayMs, clock);
    }
    if (fault.abortStatus !== undefined) {
      abort.inc();
      req.body?.resume();
      throw new ProxyError('FI', `fault injected: abort with ${fault.abortStatus}`, { status: fault.abortStatus });
    }
    return next(req);
  };
}

/** Waits ms, or rejects with the cancellation reason (downstream gone, route timeout) if that comes first. */
function sleep(req: ProxyRequest, ms: number, clock: Clock): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let off: () => void = () => {};
    const cancelTimer = clock.setTimeout(() => {
      off();
      resolve();
    }, ms);
    off = req.cancel.onAbort((reason) => {
      cancelTimer();
      reject(reason);
    });
  });
}

/** The registered filter (`type: fault`); a route's `fault:` key builds the same one. */
export const faultFilter: FilterFactory<FaultConfig> = {
  type: 'fault',
  create: (cfg, deps) =>
    faultLayer(cfg, () => ({
      delay: deps.metrics.faultsInjected.get({ listener: deps.listener, route: deps.route, kind: 'delay' }),
      abort: deps.metrics.faultsInjected.get({ listener: deps.listener, route: deps.route, kind: 'abort' }),
    })),
};
