// Schema issues in words: numeric ranges as "port 70000 is above 65535", enum values with "did you mean".
import type { z } from 'zod';
import { closest } from './suggest.js';

type Path = readonly PropertyKey[];

/** The value at a path in loosely typed data, or undefined. */
export function valueAt(data: unknown, path: Path): unknown {
  let v = data;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/** What a value is called in a message: its key, with any list indices after it (retriable_status_codes[0]). */
function nameOf(path: Path): string {
  let i = path.length - 1;
  while (i > 0 && typeof path[i] === 'number') i--;
  const key = path[i];
  if (key === undefined) return 'value';
  return String(key) + path.slice(i + 1).map((p) => `[${String(p)}]`).join('');
}

// zod's own words are kept where they are plain ("expected number"); "int" is not.
const EXPECTED: Record<string, string> = { int: 'a whole number' };

export function issueMessage(issue: z.core.$ZodIssue, data: unknown, present: boolean): string {
  const value = valueAt(data, issue.path);
  switch (issue.code) {
    case 'invalid_type': {
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      return present ? `expected ${expected}` : `required (expected ${expected})`;
    }
    case 'invalid_value': {
      const allowed = issue.values.map((v) => JSON.stringify(v)).join(', ');
      const hint = typeof value === 'string' ? closest(value, issue.values.filter((v): v is string => typeof v === 'string')) : undefined;
      const got = value === undefined ? '' : `, not ${JSON.stringify(value)}`;
      return `expected one of ${allowed}${got}${hint ? `; did you mean "${hint}"?` : ''}`;
    }
    case 'too_big':
    case 'too_small':
      return rangeMessage(issue, value, nameOf(issue.path));
    default:
      return issue.message;
  }
}

function rangeMessage(issue: z.core.$ZodIssueTooBig | z.core.$ZodIssueTooSmall, value: unknown, name: string): string {
  const big = issue.code === 'too_big';
  const limit = String(big ? (issue as z.core.$ZodIssueTooBig).maximum : (issue as z.core.$ZodIssueTooSmall).minimum);
  const inclusive = issue.inclusive !== false;
  if (issue.origin === 'number' || issue.origin === 'int' || issue.origin === 'bigint') {
    const v = String(value);
    if (big) return inclusive ? `${name} ${v} is above ${limit}` : `${name} ${v} must be below ${limit}`;
    return inclusive ? `${name} ${v} is below ${limit}` : `${name} ${v} must be above ${limit}`;
  }
  if (issue.origin === 'array' || issue.origin === 'set') {
    const n = Number(limit);
    const entries = `${n} ${n === 1 ? 'entry' : 'entries'}`;
    return big ? `${name} has more than ${entries}` : `${name} needs at least ${entries}`;
  }
  if (issue.origin === 'string') {
    if (!big && limit === '1') return `${name} must not be empty`;
    return big ? `${name} is longer than ${limit} characters` : `${name} is shorter than ${limit} characters`;
  }
  return issue.message;
}
