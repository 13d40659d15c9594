// Headers whose values are credentials: never written to the access log (any format), /debug/requests, the dashboard
// or admin /config. One list, shared by all of them; access_log.sensitive_headers adds names to it.

export const DEFAULT_SENSITIVE_HEADERS: readonly string[] = ['authorization', 'cookie', 'set-cookie', 'proxy-authorization', 'x-api-key'];

/** What a sensitive header's value is replaced by: its presence shows, its value never does. */
export const REDACTED = '[redacted]';

/** The default names and the configured ones, lower-case. */
export function sensitiveHeaderSet(extra: readonly string[] = []): ReadonlySet<string> {
  const out = new Set(DEFAULT_SENSITIVE_HEADERS);
  for (const h of extra) out.add(h.toLowerCase());
  return out;
}

const CREDENTIAL_FILTERS = new Set(['api_key', 'jwt_authn']);

/**
 * The headers the config's credential filters read a key or token from (api_key `header`, jwt_authn token sources'
 * `header`, in filter chains and filter_overrides): sensitive without being listed, whatever they are called.
 */
export function credentialHeaders(config: unknown): string[] {
  const out = new Set<string>();
  const collect = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(collect);
    else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        if (k === 'header' && typeof x === 'string') out.add(x.toLowerCase());
        else collect(x);
      }
    }
  };
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'object' && v !== null) {
      const o = v as Record<string, unknown>;
      if (typeof o.type === 'string' && CREDENTIAL_FILTERS.has(o.type)) return collect(o.config);
      for (const [k, x] of Object.entries(o)) (CREDENTIAL_FILTERS.has(k) ? collect : walk)(x);
    }
  };
  walk(config);
  return [...out];
}
