// Route timeout: the time allowed until the response head arrives. Exceeding it aborts the upstream attempt and answers 504 UT.
import { systemClock, type Clock } from '../../core/clock.js';
import { ProxyError } from '../../core/errors.js';
import type { Layer, ProxyRequest } from '../../core/service.js';

export function timeoutLayer(ms: number, clock: Clock = systemClock): Layer {
  if (ms <= 0) return (next) => next;
  return (next) => (req) => {
    const ctx = req.context;
    const deadline = ctx.startTime + ms;
    if (deadline < ctx.deadline) ctx.deadline = deadline;
    const cancelTimer = clock.setTimeout(() => req.cancel.abort(timeoutError(req, ms)), Math.max(0, ctx.deadline - clock.now()));
    return next(req).then(
      (res) => {
        cancelTimer();
        return res;
      },
      (err: unknown) => {
        cancelTimer();
        throw err;
      },
    );
  };
}

function timeoutError(req: ProxyRequest, ms: number): ProxyError {
  const ctx = req.context;
  const where = ctx.endpoint ? `from ${ctx.endpoint}` : ctx.cluster ? `from cluster ${ctx.cluster}` : '';
  return new ProxyError('UT', `upstream response timeout after ${ms}ms waiting for response headers ${where}; attempt ${ctx.attempts}`.trimEnd(), {
    endpoint: ctx.endpoint || undefined,
  });
}
