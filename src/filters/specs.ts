// The registered filters, config side (zod): the config schema is assembled from this list; same types as registry.ts.
import type { FilterSpec } from './filter.js';
import { bodyLimitSpec } from './body-limit/schema.js';
import { faultSpec } from './fault/schema.js';
import { headerMutationSpec } from './header-mutation/schema.js';
import { transcodeSpec } from './transcode/schema.js';
import { localRateLimitSpec } from './local-rate-limit/schema.js';

export const FILTER_SPECS: readonly FilterSpec[] = [
  faultSpec,
  headerMutationSpec,
  bodyLimitSpec,
  transcodeSpec,
  localRateLimitSpec,
];
