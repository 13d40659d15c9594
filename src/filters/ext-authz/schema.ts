// The ext_authz filter's config schema.
import { z } from 'zod';
import { duration, headerName } from '../../config/primitives.js';
import { defineSpec } from '../filter.js';

export const extAuthzConfig = z.strictObject({
  uri: z.url({ protocol: /^https?$/ }).meta({ description: 'The authorization service; the check is sent to this URL with the request path appended (Envoy HTTP ext_authz style).' }),
  timeout: duration.default(200).meta({ description: 'Timeout of one check.' }),
  allowed_headers: z
    .array(headerName)
    .default(['authorization', 'cookie', 'x-api-key'])
    .meta({ description: 'Request headers copied into the check (besides the x-sidecar-authz-* metadata headers).' }),
  upstream_headers: z.array(headerName).default([]).meta({ description: "Headers of an allowing check's response copied into the request sent upstream." }),
  failure_mode_allow: z.boolean().default(false).meta({ description: 'true: fail open (let the request through) when the service errs or times out; false: deny with status_on_error.' }),
  status_on_error: z.number().int().min(400).max(599).default(403).meta({ description: 'Status of the answer when the check fails and failure_mode_allow is false.' }),
  tls: z
    .strictObject({
      ca: z.string().min(1).optional().meta({ description: "Trust bundle (PEM file) the service's certificate must verify against. Absent: the system roots." }),
      sni: z.string().min(1).optional().meta({ description: 'Server name sent and verified. Absent: the host of uri.' }),
      cert: z.string().min(1).optional().meta({ description: 'Client certificate PEM file, for a service that wants mutual TLS.' }),
      key: z.string().min(1).optional().meta({ description: 'Private key PEM file of cert.' }),
    })
    .optional()
    .meta({ description: "For an https:// uri: how the service's certificate is verified and what the sidecar presents (as a cluster's tls). The check is always verified; without tls, against the system roots." }),
  cache: z
    .strictObject({
      ttl: duration.meta({ description: 'How long a decision is reused for the same method, host, path, peer and allowed headers.' }),
      max_entries: z.number().int().min(1).max(1_000_000).default(10_000),
    })
    .optional(),
}).superRefine((c, ctx) => {
  if (c.tls !== undefined && !c.uri.startsWith('https:')) ctx.addIssue({ code: 'custom', path: ['tls'], message: 'tls needs an https:// uri' });
  if (c.tls !== undefined && (c.tls.cert === undefined) !== (c.tls.key === undefined)) ctx.addIssue({ code: 'custom', path: ['tls', c.tls.cert === undefined ? 'cert' : 'key'], message: 'cert and key go together' });
});
export type ExtAuthzConfig = z.output<typeof extAuthzConfig>;

export const extAuthzSpec = defineSpec({
  type: 'ext_authz',
  description: 'Ask an external HTTP or HTTPS authorization service (2xx allows); timeout, decision cache, fail open or closed, a custom CA and client certificate.',
  schema: extAuthzConfig,
  defaults: { uri: 'http://127.0.0.1:9/authz', timeout: '20ms', failure_mode_allow: true },
});
