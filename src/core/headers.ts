// HeaderList: headers as a flat [name, value, name, value, ...] array with lower-case names.
// Node's parsers (rawHeaders) speak this shape, so it crosses the proxy without rebuilding objects.
/**
 * The hop marker (value `1`): added by a sidecar to requests toward `peer: sidecar` clusters, removed by every sidecar
 * that receives one (it marks one hop only), and believed per the listener's hop_marker rule (docs/mesh.md).
 */
export const HOP_HEADER = 'x-sidecar-hop';

export class HeaderList {
  /** Flat pairs; names are lower-case. Exposed for the transport adapters; filters use the methods. */
  readonly raw: string[];

  constructor(raw: string[] = []) {
    this.raw = raw;
  }

  static fromObject(obj: Readonly<Record<string, string | readonly string[] | number | undefined>>): HeaderList {
    const raw: string[] = [];
    for (const name in obj) {
      const v = obj[name];
      if (v === undefined) continue;
      const key = name.toLowerCase();
      if (Array.isArray(v)) for (const item of v as readonly string[]) raw.push(key, item);
      else raw.push(key, String(v));
    }
    return new HeaderList(raw);
  }

  get size(): number {
    return this.raw.length >> 1;
  }

  /** First value of a header (names are matched lower-case). */
  get(name: string): string | undefined {
    const raw = this.raw;
    for (let i = 0; i < raw.length; i += 2) if (raw[i] === name) return raw[i + 1];
    return undefined;
  }

  getAll(name: string): string[] {
    const out: string[] = [];
    const raw = this.raw;
    for (let i = 0; i < raw.length; i += 2) if (raw[i] === name) out.push(raw[i + 1]!);
    return out;
  }

  has(name: string): boolean {
    const raw = this.raw;
    for (let i = 0; i < raw.length; i += 2) if (raw[i] === name) return true;
    return false;
  }

  /** Appends a value, keeping existing ones. */
  add(name: string, value: string): void {
    this.raw.push(name, value);
  }

  /** Replaces every value of `name` with one value. */
  set(name: string, value: string): void {
    const raw = this.raw;
    let found = false;
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i] !== name) continue;
      if (!found) {
        raw[i + 1] = value;
        found = true;
      } else {
        raw.splice(i, 2);
        i -= 2;
      }
    }
    if (!found) raw.push(name, value);
  }

  remove(name: string): boolean {
    const raw = this.raw;
    let removed = false;
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i] === name) {
        raw.splice(i, 2);
        i -= 2;
        removed = true;
      }
    }
    return removed;
  }

  /** Headers as an object for APIs that need one (duplicates become arrays). */
  toObject(): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    const raw = this.raw;
    for (let i = 0; i < raw.length; i += 2) {
      const k = raw[i]!;
      const v = raw[i + 1]!;
      const prev = out[k];
      if (prev === undefined) out[k] = v;
      else if (Array.isArray(prev)) prev.push(v);
      else out[k] = [prev, v];
    }
    return out;
  }
}
