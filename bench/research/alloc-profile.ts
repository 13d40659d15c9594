// Allocation sampling of a running sidecar, collected objects included: `node --import
// ./dist/bench/research/alloc-profile.js bin/sidecar.js run -c <cfg>` with ALLOC_PROFILE_OUT=<file>. The first
// SIGUSR2 starts sampling, the second writes the profile (a .heapprofile that Chrome DevTools opens). Why not
// `node --heap-prof`: it keeps only the samples still alive when the profile is written, so short-lived per-request
// garbage, the part that costs scavenges, is missing from it. Then `node dist/bench/research/alloc-sites.js
// <file> <requests>` prints bytes per request by allocation site. Not part of the bench suite.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const out = process.env.ALLOC_PROFILE_OUT;
if (out === undefined) throw new Error('alloc-profile: set ALLOC_PROFILE_OUT to the file to write');
const session = new Session();
session.connect();
const post = (method: string, params: object = {}): Promise<unknown> =>
  new Promise((resolve, reject) => session.post(method, params, (err, result) => (err ? reject(err) : resolve(result))));

let sampling = false;
process.on('SIGUSR2', () => {
  void (async () => {
    if (!sampling) {
      sampling = true;
      await post('HeapProfiler.enable');
      // One sample per 2 KiB allocated on average; both flags keep samples of objects the GC has since freed.
      await post('HeapProfiler.startSampling', { samplingInterval: 2048, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
      return;
    }
    sampling = false;
    const { profile } = (await post('HeapProfiler.stopSampling')) as { profile: unknown };
    writeFileSync(out, JSON.stringify(profile));
  })();
});
