// Test helpers for the balancer suites: seeded PRNG and mutable endpoint fixtures.

import type { BalancedEndpoint, Random } from './balancer.js';

/** mulberry32: tiny, fast, well-distributed seeded PRNG so tests are reproducible. */
export function mulberry32(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mutable so tests can change load and health between picks, as the live proxy does. */
export interface TestEndpoint extends BalancedEndpoint {
  address: string;
  weight: number;
  active: number;
  available: boolean;
}

export function endpoint(address: string, weight = 1, active = 0, available = true): TestEndpoint {
  return { address, weight, active, available };
}

/** n endpoints "10.0.0.<i>:8080" with the given weights (default all 1). */
export function endpoints(n: number, weights: readonly number[] = []): TestEndpoint[] {
  return Array.from({ length: n }, (_, i) => endpoint(`10.0.0.${i + 1}:8080`, weights[i] ?? 1));
}

/** Count picks per address (endpoints or addresses). */
export function tally(picks: Iterable<BalancedEndpoint | string | undefined>): Map<string, number> {
  const m = new Map<string, number>();
  for (const p of picks) {
    const k = typeof p === 'string' ? p : (p?.address ?? '<none>');
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}
