// Builds filter chains from config entries: a listener's chain once, and each route's view of it with its overrides.
import type { Layer } from '../core/service.js';
import type { FilterDeps } from './filter.js';
import { filterFactory } from './registry.js';
import type { FilterEntry, FilterOverrides } from './schema.js';

/** A listener-level filter, built once per listener and shared by its routes (state such as a rate limit is one). */
export interface BuiltFilter {
  readonly type: string;
  readonly layer: Layer;
}

/** One layer from a parsed config entry (the schema has already checked `config` against the filter's schema). */
export function buildFilter(type: string, config: unknown, deps: FilterDeps): Layer {
  const factory = filterFactory(type);
  if (!factory) throw new Error(`unknown filter type "${type}"`);
  // The schema parsed `config` with this filter's own schema: it is the factory's config type.
  return factory.create(config as never, deps);
}

/** The enabled entries of a chain, built in order (first entry outermost). */
export function buildChain(entries: readonly FilterEntry[], deps: FilterDeps): BuiltFilter[] {
  const out: BuiltFilter[] = [];
  for (const e of entries) if (!e.disabled) out.push({ type: e.type, layer: buildFilter(e.type, e.config, deps) });
  return out;
}

/**
 * A route's view of the listener chain: an override with `disabled: true` drops the filter for this route, one with
 * `config` builds this route its own instance from that config; the rest are the listener's shared instances.
 */
export function routeView(listener: readonly BuiltFilter[], overrides: FilterOverrides | undefined, deps: FilterDeps): Layer[] {
  if (!overrides) return listener.map((f) => f.layer);
  const out: Layer[] = [];
  for (const f of listener) {
    const o = overrides[f.type];
    if (o?.disabled) continue;
    out.push(o?.config !== undefined ? buildFilter(f.type, o.config, deps) : f.layer);
  }
  return out;
}

/**
 * The per-attempt layers (FilterFactory.attempt) of the filters a route runs: the listener's as its overrides leave
 * them, then its own; each type once. Empty (nothing composed, nothing per attempt) when none has one.
 */
export function attemptLayers(listener: readonly BuiltFilter[], overrides: FilterOverrides | undefined, own: readonly FilterEntry[]): Layer[] {
  const out: Layer[] = [];
  const seen = new Set<string>();
  const add = (type: string): void => {
    const layer = filterFactory(type)?.attempt;
    if (layer === undefined || seen.has(type)) return;
    seen.add(type);
    out.push(layer);
  };
  for (const f of listener) if (!overrides?.[f.type]?.disabled) add(f.type);
  for (const e of own) if (!e.disabled) add(e.type);
  return out;
}
