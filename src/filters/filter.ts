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

export interface FilterFactory<S extends z.ZodType = z.ZodType> {
  /** The name configs use (`filters: [{ type: ... }]`, `filter_overrides: { <type>: ... }`). */
  readonly type: string;
  /** One line for the generated config reference. */
  readonly description: string;
  readonly schema: S;
  /** The smallest valid config input: what the contract test builds it from. */
  readonly defaults: z.input<S>;
  /** Builds the layer once; method syntax keeps the registry's list of differently-typed factories assignable. */
  create(config: z.output<S>, deps: FilterDeps): Layer;
}

/** Identity for a filter's own type-checking: `export const fooFilter = defineFilter({ ... })`. */
export const defineFilter = <S extends z.ZodType>(f: FilterFactory<S>): FilterFactory<S> => f;
