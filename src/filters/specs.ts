// The registered filters, config side (zod): the config schema is assembled from this list; same types as registry.ts.
import type { FilterSpec } from './filter.js';
import { apiKeySpec } from './api-key/schema.js';
import { bodyLimitSpec } from './body-limit/schema.js';
import { extAuthzSpec } from './ext-authz/schema.js';
import { faultSpec } from './fault/schema.js';
import { headerMutationSpec } from './header-mutation/schema.js';
import { jwtAuthnSpec } from './jwt-authn/schema.js';
import { rbacSpec } from './rbac/schema.js';
import { transcodeSpec } from './transcode/schema.js';
import { localRateLimitSpec } from './local-rate-limit/schema.js';
import { globalRateLimitSpec } from './global-rate-limit/schema.js';
import { tracingSpec } from './tracing/schema.js';

export const FILTER_SPECS: readonly FilterSpec[] = [
  jwtAuthnSpec,
  apiKeySpec,
  rbacSpec,
  extAuthzSpec,
  faultSpec,
  headerMutationSpec,
  bodyLimitSpec,
  transcodeSpec,
  localRateLimitSpec,
  globalRateLimitSpec,
  tracingSpec,
];
