// `sidecar iptables`: the nat-table rules that redirect a pod's (or netns's) traffic through the sidecar, as
// istio-init and linkerd-init write them. Pure: options in, iptables argument lists out; apply.ts runs them.

export interface InterceptOptions {
  /** The inbound listener's port: inbound TCP to the host is redirected here. */
  inboundPort: number;
  /** The outbound listener's port: outbound TCP (HTTP) from the app is redirected here. */
  outboundPort: number;
  /** The uid the sidecar runs as: its own upstream traffic is never redirected (no loop). */
  proxyUid: number;
  /** The admin port: never redirected inbound (probes reach the sidecar itself). */
  adminPort: number;
  /** Inbound destination ports left alone (e.g. ssh). */
  excludeInboundPorts: readonly number[];
  /** Outbound destination ports left alone. */
  excludeOutboundPorts: readonly number[];
  /** Outbound destination CIDRs left alone. */
  excludeOutboundCidrs: readonly string[];
  /** When set, only these outbound destination ports are redirected (e.g. 80); empty means all TCP. */
  outboundPorts: readonly number[];
}

export const CHAIN_IN = 'SIDECAR_INBOUND';
export const CHAIN_IN_REDIRECT = 'SIDECAR_IN_REDIRECT';
export const CHAIN_OUT = 'SIDECAR_OUTPUT';
export const CHAIN_OUT_REDIRECT = 'SIDECAR_REDIRECT';

const CIDR = /^(\d{1,3}\.){3}\d{1,3}(\/\d{1,2})?$/;

export function validateOptions(o: InterceptOptions): string[] {
  const errors: string[] = [];
  const port = (name: string, p: number): void => {
    if (!Number.isInteger(p) || p < 1 || p > 65535) errors.push(`${name} must be a port from 1 to 65535, got ${p}`);
  };
  port('--inbound-port', o.inboundPort);
  port('--outbound-port', o.outboundPort);
  port('--admin-port', o.adminPort);
  if (!Number.isInteger(o.proxyUid) || o.proxyUid < 0) errors.push(`--proxy-uid must be a uid (0 or more), got ${o.proxyUid}`);
  for (const p of o.excludeInboundPorts) port('--exclude-inbound-ports', p);
  for (const p of o.excludeOutboundPorts) port('--exclude-outbound-ports', p);
  for (const p of o.outboundPorts) port('--outbound-ports', p);
  for (const c of o.excludeOutboundCidrs) if (!CIDR.test(c)) errors.push(`--exclude-outbound-cidrs: "${c}" is not an IPv4 CIDR`);
  return errors;
}

/** The iptables argument lists (each without the leading `iptables`), in the order they must run. */
export function interceptRules(o: InterceptOptions): string[][] {
  const nat = (...args: (string | number)[]): string[] => ['-t', 'nat', ...args.map(String)];
  const rules: string[][] = [];
  // Chains (created fresh; cleanup removes them).
  for (const c of [CHAIN_IN, CHAIN_IN_REDIRECT, CHAIN_OUT, CHAIN_OUT_REDIRECT]) rules.push(nat('-N', c));
  rules.push(nat('-A', CHAIN_IN_REDIRECT, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', o.inboundPort));
  rules.push(nat('-A', CHAIN_OUT_REDIRECT, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', o.outboundPort));
  // Inbound: everything that arrives, except the admin port, the listeners themselves and excluded ports.
  rules.push(nat('-A', 'PREROUTING', '-p', 'tcp', '-j', CHAIN_IN));
  for (const p of [o.adminPort, o.inboundPort, o.outboundPort, ...o.excludeInboundPorts]) rules.push(nat('-A', CHAIN_IN, '-p', 'tcp', '--dport', p, '-j', 'RETURN'));
  rules.push(nat('-A', CHAIN_IN, '-p', 'tcp', '-j', CHAIN_IN_REDIRECT));
  // Outbound: locally generated TCP.
  rules.push(nat('-A', 'OUTPUT', '-p', 'tcp', '-j', CHAIN_OUT));
  // The sidecar's own traffic (its upstream calls) goes out as is: this is what keeps it from looping.
  rules.push(nat('-A', CHAIN_OUT, '-m', 'owner', '--uid-owner', o.proxyUid, '-j', 'RETURN'));
  // Loopback: talking to the sidecar or the app on lo directly is not intercepted.
  rules.push(nat('-A', CHAIN_OUT, '-o', 'lo', '-j', 'RETURN'));
  rules.push(nat('-A', CHAIN_OUT, '-d', '127.0.0.1/32', '-j', 'RETURN'));
  for (const c of o.excludeOutboundCidrs) rules.push(nat('-A', CHAIN_OUT, '-d', c, '-j', 'RETURN'));
  for (const p of o.excludeOutboundPorts) rules.push(nat('-A', CHAIN_OUT, '-p', 'tcp', '--dport', p, '-j', 'RETURN'));
  if (o.outboundPorts.length) {
    for (const p of o.outboundPorts) rules.push(nat('-A', CHAIN_OUT, '-p', 'tcp', '--dport', p, '-j', CHAIN_OUT_REDIRECT));
  } else {
    rules.push(nat('-A', CHAIN_OUT, '-p', 'tcp', '-j', CHAIN_OUT_REDIRECT));
  }
  return rules;
}

/** Rules that undo interceptRules (errors ignored by the caller: some may not exist). */
export function cleanupRules(): string[][] {
  const nat = (...args: string[]): string[] => ['-t', 'nat', ...args];
  return [
    nat('-D', 'PREROUTING', '-p', 'tcp', '-j', CHAIN_IN),
    nat('-D', 'OUTPUT', '-p', 'tcp', '-j', CHAIN_OUT),
    ...[CHAIN_IN, CHAIN_IN_REDIRECT, CHAIN_OUT, CHAIN_OUT_REDIRECT].flatMap((c) => [nat('-F', c), nat('-X', c)]),
  ];
}

/** Shell text, one `iptables ...` line per rule. */
export const renderRules = (rules: readonly (readonly string[])[]): string => rules.map((r) => `iptables ${r.join(' ')}`).join('\n') + '\n';
