// The registered filters: adding one is its folder plus one line here (the config schema is assembled from this list).
import type { FilterFactory } from './filter.js';
import { bodyLimitFilter } from './body-limit/body-limit.js';
import { faultFilter } from './fault/fault.filter.js';
import { headerMutationFilter } from './header-mutation/header-mutation.js';

export const FILTERS = [
  faultFilter,
  headerMutationFilter,
  bodyLimitFilter,
] as const satisfies readonly FilterFactory[];

const byType = new Map<string, FilterFactory>(FILTERS.map((f) => [f.type, f]));

export const filterFactory = (type: string): FilterFactory | undefined => byType.get(type);
