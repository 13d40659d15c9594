// The filter parts of the config schema, assembled from the registry: one entry shape per registered filter.
import { z } from 'zod';
import type { FilterSpec } from './filter.js';
import { FILTER_SPECS } from './specs.js';

const entry = (f: FilterSpec) =>
  z
    .strictObject({
      type: z.literal(f.type),
      disabled: z.boolean().default(false).meta({ description: 'Keep the entry but leave the filter out of the chain.' }),
      config: f.schema,
    })
    .meta({ description: f.description });

/** listeners[].filters and routes[].filters: an ordered chain, first entry outermost. */
export const filterList = z
  .array(z.discriminatedUnion('type', FILTER_SPECS.map(entry) as unknown as [ReturnType<typeof entry>, ...ReturnType<typeof entry>[]]))
  .default([]);

const override = (f: FilterSpec) =>
  z
    .strictObject({
      disabled: z.boolean().optional().meta({ description: 'true: this route skips the listener filter.' }),
      config: f.schema.optional().meta({ description: 'This route runs the listener filter with this config instead.' }),
    })
    .optional()
    .meta({ description: `Per-route change to the listener's ${f.type} filter(s).` });

/** routes[].filter_overrides: per-route disable or config of a listener-level filter, keyed by filter type. */
export const filterOverrides = z
  .strictObject(Object.fromEntries(FILTER_SPECS.map((f) => [f.type, override(f)])) as Record<string, ReturnType<typeof override>>)
  .optional();

export type FilterEntry = { readonly type: string; readonly disabled: boolean; readonly config: unknown };
export type FilterOverride = { readonly disabled?: boolean | undefined; readonly config?: unknown };
export type FilterOverrides = Readonly<Record<string, FilterOverride | undefined>>;
