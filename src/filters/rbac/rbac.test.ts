// RbacPolicy decisions, pure: claims (nested, list and scope-string contains), API-key names, CIDRs with trusted
// X-Forwarded-For hops, hosts, paths, methods, headers, deny-wins and default deny.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Cancellation } from '../../core/cancel.js';
import { HeaderList } from '../../core/headers.js';
import type { ProxyRequest, RequestContext } from '../../core/service.js';
import { clientAddress, RbacPolicy } from './rbac.js';
import { rbacConfig } from './schema.js';

function req(o: { path?: string; method?: string; authority?: string; headers?: string[]; ctx?: Partial<RequestContext> } = {}): ProxyRequest {
  return {
    method: o.method ?? 'GET',
    authority: o.authority ?? 'api.example.com:8080',
    path: o.path ?? '/orders',
    scheme: 'http',
    headers: new HeaderList(o.headers ?? []),
    body: null,
    contentLength: 0,
    cancel: new Cancellation(),
    context: { requestId: 'r', startTime: 0, listener: 'l', downstreamAddress: '10.1.2.3', downstreamProtocol: 'HTTP/1.1', scheme: 'http', fromSidecar: false, route: '', cluster: '', endpoint: '', attempts: 0, flag: undefined, error: undefined, deadline: Infinity, downstreamConnection: undefined, poolWait: undefined, ...o.ctx },
  };
}

const policy = (rules: unknown[], extra: Record<string, unknown> = {}): RbacPolicy => new RbacPolicy(rbacConfig.parse({ rules, ...extra }));

describe('RbacPolicy', () => {
  it('default deny once a policy is attached; deny wins over allow', () => {
    assert.deepEqual(policy([]).decide(req()), { allowed: false, rule: undefined, reason: 'no allow rule matched (default deny)' });
    const p = policy([{ name: 'all', action: 'allow' }, { name: 'no-delete', action: 'deny', methods: ['DELETE'] }]);
    assert.equal(p.decide(req()).allowed, true);
    assert.equal(p.decide(req({ method: 'DELETE' })).rule, 'no-delete');
  });

  it('JWT claims: nested equals, list contains, scope string contains, present', () => {
    const p = policy([{ name: 'writers', action: 'allow', claims: [{ claim: 'scope', contains: 'orders:write' }, { claim: 'org.team', equals: 'payments' }] },
      { name: 'admins', action: 'allow', claims: [{ claim: 'realm.roles', contains: 'admin' }] },
      { name: 'no-guests', action: 'deny', claims: [{ claim: 'guest', present: true }] }]);
    const claims = (c: Record<string, unknown>): ProxyRequest => req({ ctx: { jwtClaims: c } });
    assert.equal(p.decide(claims({ scope: 'orders:read orders:write', org: { team: 'payments' } })).rule, 'writers');
    assert.equal(p.decide(claims({ scope: 'orders:read', org: { team: 'payments' } })).allowed, false);
    assert.equal(p.decide(claims({ scope: 'orders:write', org: { team: 'other' } })).allowed, false);
    assert.equal(p.decide(claims({ realm: { roles: ['user', 'admin'] } })).rule, 'admins');
    assert.equal(p.decide(claims({ realm: { roles: 'administrator' } })).allowed, false);
    assert.equal(p.decide(claims({ realm: { roles: ['admin'] }, guest: false })).rule, 'no-guests');
    assert.equal(p.decide(req()).allowed, false, 'no claims at all');
  });

  it('API-key names, peer identity patterns and authenticated', () => {
    const p = policy([{ name: 'keys', action: 'allow', api_keys: ['ci'] }, { name: 'mesh', action: 'allow', peers: ['spiffe://example.org/ns/*/sa/web'] },
      { name: 'anon-read', action: 'allow', authenticated: false, methods: ['GET'], paths: [{ prefix: '/public/' }] }]);
    assert.equal(p.decide(req({ ctx: { apiKeyName: 'ci' } })).rule, 'keys');
    assert.equal(p.decide(req({ ctx: { apiKeyName: 'other' } })).allowed, false);
    assert.equal(p.decide(req({ ctx: { peerIdentity: 'spiffe://example.org/ns/a/sa/web' } })).rule, 'mesh');
    assert.equal(p.decide(req({ ctx: { peerIdentity: 'spiffe://example.org/ns/a/sa/api' } })).allowed, false);
    assert.equal(p.decide(req({ path: '/public/x' })).rule, 'anon-read');
    assert.equal(p.decide(req({ path: '/public/x', ctx: { apiKeyName: 'other' } })).allowed, false);
  });

  it('source CIDRs, with trusted X-Forwarded-For hops', () => {
    assert.equal(clientAddress(req(), 0), '10.1.2.3');
    const xff = ['x-forwarded-for', '1.1.1.1, 192.0.2.7, 10.1.2.3'];
    assert.equal(clientAddress(req({ headers: xff }), 0), '10.1.2.3');
    assert.equal(clientAddress(req({ headers: xff }), 1), '192.0.2.7');
    assert.equal(clientAddress(req({ headers: xff }), 2), '1.1.1.1');
    assert.equal(clientAddress(req({ headers: xff }), 3), '10.1.2.3', 'fewer entries than hops: the connection address');
    assert.equal(clientAddress(req({ ctx: { downstreamAddress: '::ffff:10.1.2.3' } }), 0), '10.1.2.3');
    const p = policy([{ name: 'office', action: 'allow', source_ips: ['192.0.2.0/24', 'fd00::/8'] }], { trusted_hops: 1 });
    assert.equal(p.decide(req({ headers: xff })).rule, 'office');
    assert.equal(p.decide(req({ headers: ['x-forwarded-for', '192.0.2.9, 198.51.100.1, 10.1.2.3'] })).allowed, false, 'a spoofed left entry is not trusted');
    assert.equal(p.decide(req({ headers: ['x-forwarded-for', 'fd00::5'] })).rule, 'office');
  });

  it('hosts, paths, headers', () => {
    const p = policy([{ name: 'h', action: 'allow', hosts: ['*.example.com'], paths: [{ exact: '/orders' }, { regex: '/items/[0-9]+' }], headers: [{ name: 'x-tenant', regex: 't-[a-z]+' }] }]);
    const ok = { headers: ['x-tenant', 't-acme'] };
    assert.equal(p.decide(req(ok)).allowed, true);
    assert.equal(p.decide(req({ ...ok, path: '/orders?x=1' })).allowed, true);
    assert.equal(p.decide(req({ ...ok, path: '/items/12' })).allowed, true);
    assert.equal(p.decide(req({ ...ok, path: '/items/12/x' })).allowed, false);
    assert.equal(p.decide(req({ ...ok, authority: 'example.com' })).allowed, false);
    assert.equal(p.decide(req({ ...ok, authority: 'API.EXAMPLE.COM' })).allowed, true);
    assert.equal(p.decide(req({ headers: ['x-tenant', 'acme'] })).allowed, false);
    assert.equal(p.decide(req()).allowed, false);
  });

  it('the schema refuses malformed CIDRs and ambiguous matches', () => {
    assert.equal(rbacConfig.safeParse({ rules: [{ name: 'x', action: 'allow', source_ips: ['10.0.0.0/33'] }] }).success, false);
    assert.equal(rbacConfig.safeParse({ rules: [{ name: 'x', action: 'allow', paths: [{ prefix: '/', exact: '/' }] }] }).success, false);
  });
});

describe('ip', async () => {
  const { parseIp, parseCidr, inCidr } = await import('./ip.js');
  it('parses IPv4, IPv6 (compressed, mapped, embedded IPv4) and refuses junk', () => {
    assert.deepEqual(parseIp('10.0.0.1'), { v: 4, n: 0x0a000001n });
    assert.deepEqual(parseIp('::ffff:10.0.0.1'), { v: 4, n: 0x0a000001n });
    assert.deepEqual(parseIp('::1'), { v: 6, n: 1n });
    assert.deepEqual(parseIp('fd00::5'), { v: 6, n: (0xfd00n << 112n) | 5n });
    assert.deepEqual(parseIp('64:ff9b::192.0.2.1'), { v: 6, n: (0x64n << 112n) | (0xff9bn << 96n) | 0xc0000201n });
    for (const bad of ['', '1.2.3', '1.2.3.256', '01.2.3.4', '1::2::3', 'gggg::', '1:2:3:4:5:6:7:8:9', 'localhost']) assert.equal(parseIp(bad), undefined, bad);
  });
  it('matches CIDRs of their family only', () => {
    const c = parseCidr('192.0.2.0/24')!;
    assert.ok(inCidr(parseIp('192.0.2.200')!, c));
    assert.ok(!inCidr(parseIp('192.0.3.1')!, c));
    assert.ok(inCidr(parseIp('::ffff:192.0.2.1')!, c));
    assert.ok(inCidr(parseIp('1.2.3.4')!, parseCidr('0.0.0.0/0')!));
    assert.ok(!inCidr(parseIp('::1')!, parseCidr('0.0.0.0/0')!));
    assert.ok(inCidr(parseIp('fd12::1')!, parseCidr('fd00::/8')!));
    assert.equal(parseCidr('10.0.0.0/33'), undefined);
    assert.equal(parseCidr('::/129'), undefined);
  });
});
