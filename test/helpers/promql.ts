// Test helper: the metric names a PromQL expression reads (not its functions, keywords, label names or durations).
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan', 'atan2']);

export function promqlMetricNames(expr: string): string[] {
  const text = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings (label values, regexes)
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // label lists
  const names = new Set<string>();
  // Numbers and durations first (1e3, 0.99, 1h30m, 0x1f never yield a name); an identifier followed by "(" is a
  // function or aggregation.
  for (const m of text.matchAll(/(\d[0-9a-zA-Z_.]*)|([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const [, num, ident, call] = m;
    if (num !== undefined || ident === undefined || call !== undefined || KEYWORDS.has(ident.toLowerCase())) continue;
    names.add(ident);
  }
  return [...names];
}

/** Grafana's variables, as a dashboard "All" selection would expand them. */
export function expandGrafanaVariables(expr: string, rateInterval = '1m'): string {
  return expr.replace(/\$__rate_interval|\$__interval|\$\{__rate_interval\}/g, rateInterval).replace(/\$\{?[a-zA-Z_]+\}?/g, '.*');
}
