// What a filter is (Envoy's factory split): a type name, a config schema beside its code, and a factory of Layers.
import type { z } from 'zod';
import type { Layer } from '../core/service.js';
import type { SidecarMetrics } from '../observability/catalogue.js';

/** What a filter's factory may use when it builds its layer (once per listener or route, never per request). */
export interface FilterDeps {
  readonly listener: string;
  /** The route the layer serves; '' for a listener-level filter shared by every route. */
  readonly route: string;
  readonly metrics: SidecarMetrics;
}

/**
 * A filter's config side (its folder's schema.ts): what the config schema is assembled from. Kept apart from the
 * factory so the runtime's static imports never reach zod (the config is parsed off the data path; footprint test).
 */
export interface FilterSpec<S extends z.ZodType = z.ZodType> {
  /** The name configs use (`filters: [{ type: ... }]`, `filter_overrides: { <type>: ... }`). */
  readonly type: string;
  /** One line for the generated config reference. */
  readonly description: string;
  readonly schema: S;
  /** The smallest valid config input: what the contract test builds it from. */
  readonly defaults: z.input<S>;
}

/** A filter's runtime side: builds its layer once per listener or route from a config its schema has parsed. */
export interface FilterFactory<C = unknown> {
  readonly type: string;
  /** Method syntax keeps the registry's list of differently-typed factories assignable. */
  create(config: C, deps: FilterDeps): Layer;
  /**
   * A layer around each upstream attempt (retries and hedges alike) of the routes that run this filter, innermost
   * around the cluster; the filter's own layer hands it what it needs through the request context (tracing).
   */
  readonly attempt?: Layer;
}

/** Identity, for type-checking a spec against its own schema: `export const fooSpec = defineSpec({ ... })`. */
export const defineSpec = <S extends z.ZodType>(f: FilterSpec<S>): FilterSpec<S> => f;
