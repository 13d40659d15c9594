// The proto3 JSON forms of the well-known types protobufjs leaves as plain messages: Timestamp, Duration, FieldMask,
// 64-bit integers and base64. Pure functions: string in, message fields out, and back.

export class JsonMappingError extends Error {
  constructor(readonly field: string, detail: string) {
    super(field ? `${field}: ${detail}` : detail);
  }
}

const MIN_SECONDS = -62135596800n; // 0001-01-01T00:00:00Z
const MAX_SECONDS = 253402300799n; // 9999-12-31T23:59:59Z
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** RFC 3339 text to {seconds, nanos}; seconds as a decimal string (int64). */
export function timestampFromJson(text: string, field = ''): { seconds: string; nanos: number } {
  const m = TIMESTAMP.exec(text);
  if (!m) throw new JsonMappingError(field, `"${text}" is not an RFC 3339 timestamp (e.g. 2024-05-01T12:00:00Z)`);
  const [, y, mo, d, h, mi, s, frac, , sign, oh, om] = m;
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0-99 to 1900-1999.
  const date = new Date(0);
  date.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  date.setUTCHours(Number(h), Number(mi), Number(s), 0);
  if (date.getUTCDate() !== Number(d) || date.getUTCMonth() !== Number(mo) - 1 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) {
    throw new JsonMappingError(field, `"${text}" is not a valid date and time`);
  }
  let seconds = BigInt(Math.floor(date.getTime() / 1000));
  if (sign !== undefined) {
    const offset = BigInt(Number(oh) * 3600 + Number(om) * 60);
    seconds += sign === '+' ? -offset : offset;
  }
  if (seconds < MIN_SECONDS || seconds > MAX_SECONDS) throw new JsonMappingError(field, `"${text}" is outside 0001-01-01 to 9999-12-31`);
  const nanos = frac === undefined ? 0 : Number(frac.padEnd(9, '0'));
  return { seconds: seconds.toString(), nanos };
}

/** {seconds, nanos} to RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits (as the proto3 JSON mapping prints). */
export function timestampToJson(seconds: bigint, nanos: number): string {
  if (seconds < MIN_SECONDS || seconds > MAX_SECONDS || nanos < 0 || nanos > 999_999_999) throw new JsonMappingError('', `timestamp ${seconds}s ${nanos}ns is out of range`);
  const d = new Date(Number(seconds) * 1000);
  const year = String(d.getUTCFullYear()).padStart(4, '0');
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const base = `${year}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())}T${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`;
  return `${base}${fraction(nanos)}Z`;
}

/** ".5" style fractions as the mapping prints them: 3, 6 or 9 digits, none for whole seconds. */
function fraction(nanos: number): string {
  if (nanos === 0) return '';
  const nine = String(nanos).padStart(9, '0');
  if (nine.endsWith('000000')) return `.${nine.slice(0, 3)}`;
  if (nine.endsWith('000')) return `.${nine.slice(0, 6)}`;
  return `.${nine}`;
}

const MAX_DURATION = 315576000000n;
const DURATION = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;

/** "1.5s", "-0.001s" to {seconds, nanos} (both of the same sign). */
export function durationFromJson(text: string, field = ''): { seconds: string; nanos: number } {
  const m = DURATION.exec(text);
  if (!m) throw new JsonMappingError(field, `"${text}" is not a duration (e.g. "1.5s")`);
  const negative = m[1] === '-';
  const whole = BigInt(m[2]!);
  if (whole > MAX_DURATION) throw new JsonMappingError(field, `"${text}" is out of range (at most ${MAX_DURATION} seconds)`);
  const nanos = m[3] === undefined ? 0 : Number(m[3].padEnd(9, '0'));
  return { seconds: (negative ? -whole : whole).toString(), nanos: negative ? -nanos : nanos };
}

export function durationToJson(seconds: bigint, nanos: number): string {
  const negative = seconds < 0n || nanos < 0;
  const s = seconds < 0n ? -seconds : seconds;
  const n = Math.abs(nanos);
  return `${negative ? '-' : ''}${s}${fraction(n)}s`;
}

/** "user.displayName,photo" to paths ["user.display_name", "photo"]. */
export function fieldMaskFromJson(text: string, field = ''): { paths: string[] } {
  if (text === '') return { paths: [] };
  return {
    paths: text.split(',').map((p) => {
      if (/_/.test(p)) throw new JsonMappingError(field, `field mask path "${p}" must be lowerCamelCase in JSON`);
      return p.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    }),
  };
}

export function fieldMaskToJson(paths: readonly string[]): string {
  return paths.map((p) => p.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())).join(',');
}

/** The JSON name protoc gives a field without json_name: lowerCamelCase of its proto name. */
export const lowerCamel = (name: string): string => name.replace(/_+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());

const INT64 = { min: -(2n ** 63n), max: 2n ** 63n - 1n };
const UINT64 = { min: 0n, max: 2n ** 64n - 1n };

/** A 64-bit integer from JSON (a decimal string, or a number that is a safe integer), as a decimal string. */
export function int64FromJson(v: unknown, unsigned: boolean, field = ''): string {
  let n: bigint;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new JsonMappingError(field, `${v} is not an integer`);
    if (!Number.isSafeInteger(v)) throw new JsonMappingError(field, `${v} is beyond 2^53: send 64-bit integers as strings`);
    n = BigInt(v);
  } else if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) n = BigInt(v.trim());
  else if (typeof v === 'string' && /^-?\d+(\.0*)?(e\+?\d+)?$/i.test(v.trim()) && Number.isSafeInteger(Number(v))) n = BigInt(Number(v));
  else throw new JsonMappingError(field, `expected a ${unsigned ? 'u' : ''}int64 (a decimal string or integer), got ${describe(v)}`);
  const r = unsigned ? UINT64 : INT64;
  if (n < r.min || n > r.max) throw new JsonMappingError(field, `${n} is out of range for ${unsigned ? 'uint64' : 'int64'}`);
  return n.toString();
}

/** Base64 (standard or URL-safe, padding optional) to bytes. */
export function bytesFromJson(v: unknown, field = ''): Buffer {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) throw new JsonMappingError(field, `expected base64 text, got ${describe(v)}`);
  return Buffer.from(v.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

export const describe = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : typeof v === 'string' ? `"${v.length > 40 ? `${v.slice(0, 40)}...` : v}"` : String(v);
