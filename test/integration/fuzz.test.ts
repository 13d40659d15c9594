// The fixed-seed slice of the fuzz campaign (npm run fuzz runs 100,000 cases): hostile and valid HTTP/1.1 and HTTP/2
// requests over raw sockets, slow and abandoned bodies; no crash, no hang, nothing malformed forwarded, every valid
// request answered correctly, every connection closed and the heap back to its baseline afterwards.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memoryBackToBaseline, runCampaign } from '../fuzz/campaign.js';

describe('fuzz campaign (fixed seed)', () => {
  it('1000 cases, seed 15', async () => {
    const r = await runCampaign({ seed: 15, cases: 1000 });
    assert.equal(r.crashed, false);
    assert.deepEqual(r.malformedForwarded, []);
    assert.deepEqual(r.wrongAnswers, []);
    assert.deepEqual(r.hangs, []);
    assert.ok(r.valid > 100 && r.hostile > 300 && r.h2 > 100, JSON.stringify(r));
    assert.ok(r.upstreamSeen >= r.valid, 'every valid request reached the upstream');
    // Slow and abandoned bodies: whole ones answered, cut-off ones and half-open HTTP/2 streams timed out with 408.
    assert.ok(r.dripComplete > 0 && r.dripStalled > 0 && r.h2Stalled > 0, JSON.stringify(r));
    assert.equal(r.connectionsAfter, 0, 'every connection closed once idle_timeout passed');
    assert.ok(memoryBackToBaseline(r), `heap after GC ${r.heapBaselineMiB.toFixed(1)} -> ${r.heapAfterMiB.toFixed(1)} MiB (rss ${r.rssBaselineMiB.toFixed(0)} -> ${r.rssAfterMiB.toFixed(0)})`);
  });
});
