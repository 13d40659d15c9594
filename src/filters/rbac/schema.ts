// The rbac filter's config schema.
import { z } from 'zod';
import { headerName } from '../../config/primitives.js';
import { defineSpec } from '../filter.js';
import { parseCidr } from './ip.js';

const cidr = z.string().refine((s) => parseCidr(s) !== undefined, 'an IP address or CIDR such as 10.0.0.0/8 or fd00::/8');

const pathMatch = z
  .strictObject({ exact: z.string().optional(), prefix: z.string().optional(), regex: z.string().optional() })
  .refine((p) => [p.exact, p.prefix, p.regex].filter((v) => v !== undefined).length === 1, { message: 'a path match needs exactly one of exact, prefix, regex' });

const claimMatch = z
  .strictObject({
    claim: z.string().min(1).meta({ description: 'Dotted path into the JWT claims, e.g. realm_access.roles.' }),
    equals: z.union([z.string(), z.number(), z.boolean()]).optional().meta({ description: 'The claim equals this value.' }),
    contains: z.string().optional().meta({ description: 'A list claim holds this value, or a space-separated string claim (scope) holds this word.' }),
    present: z.boolean().optional().meta({ description: 'true: the claim is present; false: absent.' }),
  })
  .refine((c) => [c.equals, c.contains, c.present].filter((v) => v !== undefined).length === 1, { message: 'a claim match needs exactly one of equals, contains, present' });

const headerMatch = z
  .strictObject({ name: headerName, exact: z.string().optional(), regex: z.string().optional(), present: z.boolean().optional() })
  .refine((h) => [h.exact, h.regex, h.present].filter((v) => v !== undefined).length === 1, { message: 'a header match needs exactly one of exact, regex, present' });

/** Every condition given must hold (AND); within one condition's list, any entry (OR). */
export const rbacRule = z.strictObject({
  name: z.string().min(1).meta({ description: 'Named in the cause of a denial, the access log and metrics.' }),
  action: z.enum(['allow', 'deny']),
  peers: z.array(z.string().min(1)).optional().meta({ description: 'mTLS peer SPIFFE IDs, exact or patterns (`*` one segment, trailing `/**`).' }),
  claims: z.array(claimMatch).optional().meta({ description: 'JWT claim conditions (all must hold); needs jwt_authn before this filter.' }),
  api_keys: z.array(z.string().min(1)).optional().meta({ description: 'API-key names (api_key filter).' }),
  source_ips: z.array(cidr).optional().meta({ description: 'Client addresses or CIDRs (see trusted_hops).' }),
  hosts: z.array(z.string().min(1)).optional().meta({ description: 'Hosts (port ignored), exact or `*.suffix`; case-insensitive.' }),
  paths: z.array(pathMatch).optional().meta({ description: 'Request path (query ignored).' }),
  methods: z.array(z.string().min(1)).optional(),
  headers: z.array(headerMatch).optional().meta({ description: 'Header conditions (all must hold).' }),
  authenticated: z.boolean().optional().meta({ description: 'true: the request has a verified JWT, API key or peer identity; false: none.' }),
});

export const rbacConfig = z.strictObject({
  rules: z.array(rbacRule).default([]).meta({ description: 'Deny rules win over allow rules; no allow rule matching is a denial.' }),
  dry_run: z.boolean().default(false).meta({ description: 'Log and count what would be denied, deny nothing.' }),
  trusted_hops: z.number().int().min(0).max(10).default(0).meta({
    description: 'Proxies in front of this sidecar whose X-Forwarded-For entries are trusted: 0 uses the connection address; n uses the n-th X-Forwarded-For entry from the right.',
  }),
});
export type RbacConfig = z.output<typeof rbacConfig>;
export type RbacRule = z.output<typeof rbacRule>;

export const rbacSpec = defineSpec({
  type: 'rbac',
  description: 'Allow and deny rules on peer identity, JWT claims, API-key name, source IP, host, path, method and headers; 403 RBAC.',
  schema: rbacConfig,
  defaults: { rules: [{ name: 'all', action: 'allow' }] },
});
