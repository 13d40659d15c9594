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
