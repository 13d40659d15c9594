// `sidecar iptables [--apply] [--cleanup] ...`: prints, applies or removes the interception rules.
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { cleanupRules, interceptRules, renderRules, validateOptions, type InterceptOptions } from './rules.js';

export const IPTABLES_HELP = `Usage: sidecar iptables [--apply | --cleanup] [options]

Prints the iptables (nat table) rules that redirect inbound TCP to the inbound listener and outbound TCP
(HTTP) to the outbound listener, as istio-init/linkerd-init do. Traffic of --proxy-uid (the sidecar's own
upstream calls), loopback, the admin port and the excluded ports/CIDRs is left alone. The outbound listener
(mode: forward) routes the redirected plaintext HTTP by its Host header.

Options:
  --apply                        Run the rules (needs NET_ADMIN) instead of printing them
  --cleanup                      Remove the rules and chains (print, or run with --apply)
  --proxy-uid N                  The sidecar's uid (required)
  --inbound-port N               Inbound listener port (15006)
  --outbound-port N              Outbound listener port (15001)
  --admin-port N                 Admin port (15000)
  --outbound-ports P,P           Redirect only these outbound destination ports (default: all TCP)
  --exclude-inbound-ports P,P    Inbound ports not redirected
  --exclude-outbound-ports P,P   Outbound ports not redirected
  --exclude-outbound-cidrs C,C   Outbound destinations not redirected
  -h, --help                     Show this help
`;

const list = (v: string | undefined): string[] => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : []);

export function iptablesCommand(argv: string[]): number {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        apply: { type: 'boolean' },
        cleanup: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        'proxy-uid': { type: 'string' },
        'inbound-port': { type: 'string', default: '15006' },
        'outbound-port': { type: 'string', default: '15001' },
        'admin-port': { type: 'string', default: '15000' },
        'outbound-ports': { type: 'string' },
        'exclude-inbound-ports': { type: 'string' },
        'exclude-outbound-ports': { type: 'string' },
        'exclude-outbound-cidrs': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`sidecar iptables: ${(err as Error).message}\n\n${IPTABLES_HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(IPTABLES_HELP);
    return 0;
  }
  let rules: string[][];
  if (values.cleanup) {
    rules = cleanupRules();
  } else {
    if (values['proxy-uid'] === undefined) {
      process.stderr.write(`sidecar iptables: --proxy-uid is required (the sidecar's own traffic must not be redirected)\n\n${IPTABLES_HELP}`);
      return 2;
    }
    const num = (k: string): number => (/^\d+$/.test(String(values[k])) ? Number(values[k]) : NaN);
    const opts: InterceptOptions = {
      proxyUid: num('proxy-uid'),
      inboundPort: num('inbound-port'),
      outboundPort: num('outbound-port'),
      adminPort: num('admin-port'),
      outboundPorts: list(values['outbound-ports'] as string | undefined).map(Number),
      excludeInboundPorts: list(values['exclude-inbound-ports'] as string | undefined).map(Number),
      excludeOutboundPorts: list(values['exclude-outbound-ports'] as string | undefined).map(Number),
      excludeOutboundCidrs: list(values['exclude-outbound-cidrs'] as string | undefined),
    };
    const errors = validateOptions(opts);
    if (errors.length) {
      process.stderr.write(`${errors.map((e) => `sidecar iptables: ${e}`).join('\n')}\n`);
      return 2;
    }
    rules = interceptRules(opts);
  }
  if (!values.apply) {
    process.stdout.write(renderRules(rules));
    return 0;
  }
  for (const r of rules) {
    const res = spawnSync('iptables', ['-w', ...r], { encoding: 'utf8' });
    if (res.status !== 0 && !values.cleanup) {
      process.stderr.write(`sidecar iptables: iptables ${r.join(' ')} failed: ${res.stderr || res.error?.message}\n`);
      return 1;
    }
  }
  process.stdout.write(`sidecar iptables: ${values.cleanup ? 'removed' : 'applied'} ${rules.length} rules\n`);
  return 0;
}
