// GCRA (generic cell rate algorithm) for the Redis-backed global rate limit: one number per key (the theoretical
// arrival time, TAT), so one atomic Lua GET/SET per request, no window-edge double bursts as a fixed window has.
// The pure decision (unit-tested) and the Lua script it mirrors; the filter is global-rate-limit.ts.

export interface GcraLimit {
  /** Requests allowed at once from idle. */
  readonly burst: number;
  /** Milliseconds between requests at the sustained rate (period / requests). */
  readonly intervalMs: number;
}

export interface GcraDecision {
  readonly allowed: boolean;
  /** The TAT to store (unchanged when refused). */
  readonly tat: number;
  readonly remaining: number;
  readonly retryAfterMs: number;
  /** Until the bucket is full again. */
  readonly resetMs: number;
}

/** The decision for one request of `cost` at `now`, given the stored TAT (undefined: never seen). */
export function gcra(limit: GcraLimit, storedTat: number | undefined, now: number, cost = 1): GcraDecision {
  const T = limit.intervalMs;
  const capacity = limit.burst * T;
  const tat = storedTat === undefined || storedTat < now ? now : storedTat;
  const newTat = tat + T * cost;
  const used = newTat - now;
  if (used > capacity) {
    return { allowed: false, tat, remaining: 0, retryAfterMs: used - capacity, resetMs: tat - now };
  }
  return { allowed: true, tat: newTat, remaining: Math.floor((capacity - used) / T), retryAfterMs: 0, resetMs: used };
}

/**
 * A lease: up to `max` requests' worth at once (at least 1), as many as the bucket holds now; `granted` 0 is a
 * refusal (as gcra's). The local pre-check spends a lease without asking Redis again.
 */
export function gcraLease(limit: GcraLimit, storedTat: number | undefined, now: number, max: number): GcraDecision & { granted: number } {
  const T = limit.intervalMs;
  const tat = storedTat === undefined || storedTat < now ? now : storedTat;
  const fits = Math.floor((limit.burst * T - (tat - now)) / T + 1e-9);
  const granted = Math.max(0, Math.min(max, fits));
  return { ...gcra(limit, storedTat, now, Math.max(1, granted)), granted };
}

/**
 * The same decision inside Redis, atomic per key. Time is Redis's own (TIME), so sidecars with skewed clocks share one
 * clock. KEYS[1] the key; ARGV: intervalMs, burst, cost. Returns {allowed 0|1, remaining, retryAfterMs, resetMs}.
 * With ARGV[4] = '1' cost is a most (a lease, gcraLease): it takes as many as fit, and the first value is that number.
 * The key expires when the bucket would be full again, so idle keys cost nothing.
 */
export const GCRA_LUA = `
local T = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local capacity = burst * T
if ARGV[4] == '1' then
  local fits = math.floor((capacity - (tat - now)) / T + 1e-9)
  cost = math.max(1, math.min(cost, fits))
end
local newTat = tat + T * cost
local used = newTat - now
if used > capacity then
  return {0, 0, used - capacity, tat - now}
end
redis.call('SET', KEYS[1], newTat, 'PX', math.max(1, math.ceil(used)))
return {cost, math.floor((capacity - used) / T), 0, used}
`;
