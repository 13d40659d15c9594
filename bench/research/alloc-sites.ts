// `node dist/bench/research/alloc-sites.js <a.heapprofile> <requests-a> [<b.heapprofile> <requests-b>]`: bytes
// allocated per request by allocation site (self), from profiles written by alloc-profile.ts; with two profiles,
// the sites sorted by how much more B allocates than A. Sampled: sites under ~100 bytes per request are noise, and
// inlining moves bytes between a caller and its callee from one process to another.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

function perRequest(file: string, requests: number): Map<string, number> {
  const { head } = JSON.parse(readFileSync(file, 'utf8')) as { head: ProfileNode };
  const bySite = new Map<string, number>();
  const walk = (n: ProfileNode): void => {
    const f = n.callFrame;
    const site = `${f.functionName || '(anonymous)'} ${f.url.replace(/.*\/(node_modules|dist)\//, '$1/')}:${f.lineNumber + 1}`;
    if (n.selfSize > 0) bySite.set(site, (bySite.get(site) ?? 0) + n.selfSize / requests);
    for (const c of n.children) walk(c);
  };
  walk(head);
  return bySite;
}

const [fileA, reqA, fileB, reqB] = process.argv.slice(2);
if (fileA === undefined || reqA === undefined) {
  process.stderr.write('usage: alloc-sites.js <a.heapprofile> <requests-a> [<b.heapprofile> <requests-b>]\n');
  process.exit(2);
}
const requests = (arg: string): number => {
  const n = Number(arg);
  if (!(n > 0)) {
    process.stderr.write(`alloc-sites.js: "${arg}" is not a request count\n`);
    process.exit(2);
  }
  return n;
};
const a = perRequest(fileA, requests(reqA));
const b = fileB !== undefined && reqB !== undefined ? perRequest(fileB, requests(reqB)) : undefined;
const total = (m: Map<string, number>): number => [...m.values()].reduce((s, x) => s + x, 0);
const fmt = (x: number): string => x.toFixed(0).padStart(7);
const lines: string[] = [];
if (b === undefined) {
  lines.push(`bytes per request: ${total(a).toFixed(0)}`);
  for (const [site, bytes] of [...a].sort((x, y) => y[1] - x[1]).slice(0, 40)) lines.push(`${fmt(bytes)} ${site}`);
} else {
  lines.push(`bytes per request: A ${total(a).toFixed(0)}, B ${total(b).toFixed(0)}`, '    B-A       A       B site');
  const sites = [...new Set([...a.keys(), ...b.keys()])].map((s): [string, number, number] => [s, a.get(s) ?? 0, b.get(s) ?? 0]);
  for (const [site, x, y] of sites.sort((p, q) => q[2] - q[1] - (p[2] - p[1])).slice(0, 40)) lines.push(`${fmt(y - x)} ${fmt(x)} ${fmt(y)} ${site}`);
}
process.stdout.write(`${lines.join('\n')}\n`);
