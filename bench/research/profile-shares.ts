// `node dist/bench/research/profile-shares.js <dir-with-.cpuprofile>...`: the share of the main thread's busy samples
// (idle left out) spent inside each observability frame, inclusive, one row per profile. For comparing builds on a
// busy machine, where absolute µs per request are noise but shares of one process's profile are not.
// Profiles come from bench/research/profile-one.sh (one sidecar under wrk, --cpu-prof).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
}
interface Profile {
  nodes: { id: number; callFrame: CallFrame; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

const frames: Record<string, (f: CallFrame) => boolean> = {
  'exchange.record': (f) => f.functionName === 'record' && f.url.endsWith('http-server/exchange.js'),
  'access log write': (f) => f.functionName === 'write' && f.url.endsWith('observability/access-log.js'),
  'debug record': (f) => f.functionName === 'record' && f.url.endsWith('request-debug.js'),
  'latency history': (f) => f.functionName === 'record' && f.url.endsWith('latency-history.js'),
  noteAttempt: (f) => f.functionName === 'noteAttempt',
  isoNow: (f) => f.functionName === 'isoNow',
  'tracing (self)': () => false,
  GC: (f) => f.functionName === '(garbage collector)',
};
const names = Object.keys(frames);
process.stdout.write(`| profile | ${names.join(' | ')} |\n|${'---|'.repeat(names.length + 1)}\n`);
for (const dir of process.argv.slice(2)) {
  // The main thread's profile is the largest (a worker thread writes its own, small one).
  const files = readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'));
  const main = files.sort((a, b) => statSync(path.join(dir, b)).size - statSync(path.join(dir, a)).size).slice(0, 1);
  for (const file of main) {
    const p = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Profile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    let busy = 0;
    const inside = new Map<string, number>(names.map((k) => [k, 0]));
    p.samples.forEach((id, i) => {
      const leaf = byId.get(id)!.callFrame;
      if (leaf.functionName === '(idle)') return;
      const dt = p.timeDeltas[i] ?? 0;
      busy += dt;
      if (leaf.url.includes('/filters/tracing/')) inside.set('tracing (self)', inside.get('tracing (self)')! + dt);
      const hit = new Set<string>();
      for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) for (const k of names) if (frames[k]!(byId.get(x)!.callFrame)) hit.add(k);
      for (const k of hit) inside.set(k, inside.get(k)! + dt);
    });
    process.stdout.write(`| ${path.basename(dir)} | ${names.map((k) => `${((inside.get(k)! / busy) * 100).toFixed(2)}%`).join(' | ')} |\n`);
  }
}
