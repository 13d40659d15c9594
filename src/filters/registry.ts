// The registered filters, runtime side: adding one is its folder plus one line here and one in specs.ts.
import type { FilterFactory } from './filter.js';
import { apiKeyFilter } from './api-key/api-key.js';
import { bodyLimitFilter } from './body-limit/body-limit.js';
import { extAuthzFilter } from './ext-authz/ext-authz.js';
import { faultFilter } from './fault/fault.filter.js';
import { headerMutationFilter } from './header-mutation/header-mutation.js';
import { jwtAuthnFilter } from './jwt-authn/jwt-authn.js';
import { rbacFilter } from './rbac/rbac.js';
import { transcodeFilter } from './transcode/transcoder.js';
import { localRateLimitFilter } from './local-rate-limit/local-rate-limit.js';
import { globalRateLimitFilter } from './global-rate-limit/global-rate-limit.js';
import { tracingFilter } from './tracing/tracing.js';

// Each factory's config type is its own; the chain builder hands it what that filter's schema parsed.
export const FILTERS: readonly FilterFactory<never>[] = [
  jwtAuthnFilter,
  apiKeyFilter,
  rbacFilter,
  extAuthzFilter,
  faultFilter,
  headerMutationFilter,
  bodyLimitFilter,
  transcodeFilter,
  localRateLimitFilter,
  globalRateLimitFilter,
  tracingFilter,
];

const byType = new Map<string, FilterFactory<never>>(FILTERS.map((f) => [f.type, f]));

export const filterFactory = (type: string): FilterFactory<never> | undefined => byType.get(type);
