import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupRules, interceptRules, renderRules, validateOptions, type InterceptOptions } from './rules.js';

const base: InterceptOptions = { inboundPort: 15006, outboundPort: 15001, proxyUid: 1337, adminPort: 15000, excludeInboundPorts: [22], excludeOutboundPorts: [5432], excludeOutboundCidrs: ['10.0.0.0/8'], outboundPorts: [] };

test('the sidecar uid is excluded before any outbound redirect, and admin/excluded ports before the inbound redirect', () => {
  const lines = renderRules(interceptRules(base)).trim().split('\n');
  const idx = (needle: string): number => lines.findIndex((l) => l.includes(needle));
  const uid = idx('--uid-owner 1337 -j RETURN');
  const outRedirect = idx('-A SIDECAR_OUTPUT -p tcp -j SIDECAR_REDIRECT');
  assert.ok(uid >= 0 && outRedirect > uid, lines.join('\n'));
  assert.ok(idx('-A SIDECAR_INBOUND -p tcp --dport 15000 -j RETURN') >= 0);
  assert.ok(idx('-A SIDECAR_INBOUND -p tcp --dport 22 -j RETURN') < idx('-A SIDECAR_INBOUND -p tcp -j SIDECAR_IN_REDIRECT'));
  assert.ok(idx('-d 10.0.0.0/8 -j RETURN') < outRedirect);
  assert.ok(idx('--dport 5432 -j RETURN') < outRedirect);
  assert.ok(idx('REDIRECT --to-ports 15006') >= 0 && idx('REDIRECT --to-ports 15001') >= 0);
  assert.ok(lines.every((l) => l.startsWith('iptables -t nat ')));
});

test('--outbound-ports limits the redirect to those ports', () => {
  const lines = renderRules(interceptRules({ ...base, outboundPorts: [80, 8080] }));
  assert.match(lines, /--dport 80 -j SIDECAR_REDIRECT/);
  assert.match(lines, /--dport 8080 -j SIDECAR_REDIRECT/);
  assert.doesNotMatch(lines, /-A SIDECAR_OUTPUT -p tcp -j SIDECAR_REDIRECT/);
});

test('bad options are reported, cleanup removes every chain', () => {
  assert.deepEqual(validateOptions(base), []);
  const errs = validateOptions({ ...base, inboundPort: 0, proxyUid: -1, excludeOutboundCidrs: ['nope'] });
  assert.equal(errs.length, 3);
  const c = renderRules(cleanupRules());
  for (const chain of ['SIDECAR_INBOUND', 'SIDECAR_IN_REDIRECT', 'SIDECAR_OUTPUT', 'SIDECAR_REDIRECT']) assert.match(c, new RegExp(`-X ${chain}\\n`));
});
