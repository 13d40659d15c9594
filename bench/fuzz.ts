// npm run fuzz: the full campaign (FUZZ_CASES, default 100000; FUZZ_SEED, default 15; FUZZ_CONCURRENCY, default 16). It lives
// outside test/ because node --test runs every file under a test/ folder.
import { memoryBackToBaseline, runCampaign } from '../test/fuzz/campaign.js';

const cases = Number(process.env.FUZZ_CASES ?? 100_000);
const seed = Number(process.env.FUZZ_SEED ?? 15);
const r = await runCampaign({ seed, cases, concurrency: Number(process.env.FUZZ_CONCURRENCY ?? 16), log: (s) => console.error(s), diagnose: process.env.FUZZ_DIAGNOSE === '1' });
console.log(JSON.stringify({ seed, ...r }, null, 2));
const ok = !r.crashed && r.malformedForwarded.length === 0 && r.wrongAnswers.length === 0 && r.hangs.length === 0 && r.connectionsAfter === 0 && memoryBackToBaseline(r);
console.log(ok ? 'fuzz: PASS' : 'fuzz: FAIL');
process.exit(ok ? 0 : 1);
