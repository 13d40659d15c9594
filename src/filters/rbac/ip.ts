// IP addresses and CIDRs without node:net (filters are pure modules): parsed to a bigint and a family.

export interface Ip {
  readonly v: 4 | 6;
  readonly n: bigint;
}

function parse4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255) return undefined;
    n = (n << 8n) | BigInt(p);
  }
  return n;
}

function parse6(s: string): bigint | undefined {
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  let tail4: bigint | undefined;
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    tail4 = parse4(s.slice(lastColon + 1));
    if (tail4 === undefined) return undefined;
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string): string[] | undefined => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  if (head === undefined || rest === undefined) return undefined;
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  let n = 0n;
  for (const g of all) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    n = (n << 16n) | BigInt(`0x${g}`);
  }
  if (tail4 !== undefined) n = (n & ~0xffffffffn) | tail4;
  return n;
}

/** An address; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is its IPv4 address. */
export function parseIp(s: string): Ip | undefined {
  const v4 = parse4(s);
  if (v4 !== undefined) return { v: 4, n: v4 };
  const v6 = s.includes(':') ? parse6(s) : undefined;
  if (v6 === undefined) return undefined;
  if (v6 >> 32n === 0xffffn) return { v: 4, n: v6 & 0xffffffffn };
  return { v: 6, n: v6 };
}

export interface Cidr {
  readonly v: 4 | 6;
  readonly net: bigint;
  readonly mask: bigint;
}

export function parseCidr(s: string): Cidr | undefined {
  const [addr, bits, ...more] = s.split('/');
  if (more.length > 0 || addr === undefined) return undefined;
  const ip = parseIp(addr);
  if (ip === undefined) return undefined;
  const width = ip.v === 4 ? 32 : 128;
  if (bits !== undefined && !/^\d{1,3}$/.test(bits)) return undefined;
  const b = bits === undefined ? width : Number(bits);
  if (b > width) return undefined;
  const mask = b === 0 ? 0n : ((1n << BigInt(b)) - 1n) << BigInt(width - b);
  return { v: ip.v, net: ip.n & mask, mask };
}

export const inCidr = (ip: Ip, c: Cidr): boolean => ip.v === c.v && (ip.n & c.mask) === c.net;

/** The address in canonical-enough text for comparisons: IPv4 dotted, IPv4-mapped unmapped. */
export const unmapIp = (s: string): string => (s.toLowerCase().startsWith('::ffff:') && parse4(s.slice(7)) !== undefined ? s.slice(7) : s);
