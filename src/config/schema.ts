// The config schema: the single source of truth for types, validation, defaults, docs and the editor JSON Schema.
import { hopCompression, protobufBodies } from '../payloads/schema.js';
import { z } from 'zod';
import { readSecretFile } from './secret-file.js';
import { suggestName } from './suggest.js';
import { duration, headerName, headerValue, size } from './primitives.js';
import { faultPolicy } from '../filters/fault/schema.js';
import { headerMutation } from '../filters/header-mutation/schema.js';
import { filterList, filterOverrides } from '../filters/schema.js';
import { isIdentityPattern } from '../security/identity.js';
import { compileFormat, FormatError } from '../observability/access-format.js';
import { sensitiveHeaderSet } from '../observability/sensitive-headers.js';

export { duration, size } from './primitives.js';
export { faultPolicy } from '../filters/fault/schema.js';
export { headerMutation } from '../filters/header-mutation/schema.js';

const port = z.number().int().min(0).max(65535);
const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:8080');
const regex = z.string().refine((s) => {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
}, 'not a valid regular expression');

export const valueMatch = z
  .strictObject({
    name: z.string().min(1),
    exact: z.string().optional(),
    regex: regex.optional(),
    present: z.boolean().optional(),
    invert: z.boolean().default(false).meta({ description: 'Match when the condition does not hold.' }),
  })
  .refine((m) => [m.exact, m.regex, m.present].filter((x) => x !== undefined).length <= 1, {
    message: 'use at most one of exact, regex, present',
  });

export const routeMatch = z
  .strictObject({
    hosts: z
      .array(z.string().min(1))
      .optional()
      .meta({ description: 'Host names to match (exact, or a leading wildcard such as *.example.com); port is ignored.' }),
    prefix: z.string().startsWith('/').optional(),
    exact: z.string().startsWith('/').optional(),
    regex: regex.optional().meta({ description: 'Regular expression matched against the whole path (without query).' }),
    methods: z.array(z.string().regex(/^[A-Z]+$/, 'methods are upper-case, e.g. GET')).optional(),
    headers: z.array(valueMatch).optional(),
    query: z.array(valueMatch).optional(),
  })
  .refine((m) => [m.prefix, m.exact, m.regex].filter((x) => x !== undefined).length <= 1, {
    message: 'use at most one of prefix, exact, regex',
  });

export const RETRY_ON = [
  'connect-failure',
  'refused-stream',
  'reset',
  '5xx',
  'gateway-error',
  'retriable-status-codes',
  'retriable-headers',
  // gRPC, judged from grpc-status in the response head (trailers-only answers), as Envoy's retry_on grpc conditions.
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const;


export const retryBackoff = z
  .strictObject({
    base_interval: duration.default(25).meta({ description: 'First retry waits a random time below this (full jitter); doubles per retry.' }),
    max_interval: duration.default(250).meta({ description: 'Cap of the backoff interval; Retry-After is capped at 10x this.' }),
  })
  .refine((b) => b.max_interval >= b.base_interval, { message: 'max_interval must be at least base_interval' });

export const retryPolicy = z.strictObject({
  retry_on: z
    .array(z.enum(RETRY_ON))
    .min(1)
    .default(['connect-failure', 'refused-stream', 'gateway-error'])
    .meta({ description: 'Conditions that trigger a retry (Envoy names). reset, 5xx and gateway-error also cover connect failures. cancelled, deadline-exceeded, internal, resource-exhausted and unavailable are gRPC codes in a trailers-only answer (grpc-status in the response head), retried whatever the method.' }),
  max_retries: z.number().int().min(0).max(10).default(1).meta({ description: 'Retries after the first attempt (0 disables retries).' }),
  per_try_timeout: duration
    .optional()
    .meta({ description: 'Time allowed per attempt until response headers; a timed-out attempt is retried (504 when no retry is left).' }),
  backoff: retryBackoff
    .default({ base_interval: 25, max_interval: 250 })
    .meta({ description: 'Exponential backoff with full jitter between attempts, clamped to the route timeout.' }),
  retriable_status_codes: z
    .array(z.number().int().min(100).max(599))
    .default([])
    .meta({ description: 'Statuses retried when retry_on has retriable-status-codes.' }),
  retriable_headers: z
    .array(
      z.strictObject({
        name: headerName,
        exact: z.string().optional().meta({ description: 'Value to match; absent means the header only has to be present.' }),
      }),
    )
    .default([])
    .meta({ description: 'Response headers (present, or with an exact value) retried when retry_on has retriable-headers.' }),
  allow_non_idempotent: z
    .boolean()
    .default(false)
    .meta({ description: 'Also replay POST/PATCH after the upstream may have seen them (unsafe unless the upstream deduplicates).' }),
  idempotency_key_header_allowed: z
    .boolean()
    .default(false)
    .meta({ description: 'Replay a non-idempotent request that carries an Idempotency-Key header.' }),
  max_replay_body: size
    .default(64 * 1024)
    .meta({ description: 'Request bodies up to this size are buffered for replay; a larger one is retried only if none of it was read yet (a failed connect).' }),
});

export const adaptiveConcurrencyPolicy = z
  .strictObject({
    algorithm: z.enum(['aimd', 'gradient']).default('gradient').meta({ description: 'How the limit adapts: aimd (+1 per good sample, x0.9 on overload) or gradient (long/short latency ratio).' }),
    min_limit: z.number().int().min(1).default(1).meta({ description: 'Lowest concurrency limit.' }),
    max_limit: z.number().int().min(1).default(200).meta({ description: 'Highest concurrency limit.' }),
    initial_limit: z.number().int().min(1).default(20).meta({ description: 'Concurrency limit at start.' }),
    latency_threshold: duration
      .default(5_000)
      .meta({ description: 'aimd: a response head slower than this counts as overload.' }),
  })
  .refine((a) => a.min_limit <= a.initial_limit && a.initial_limit <= a.max_limit, {
    message: 'adaptive_concurrency needs min_limit <= initial_limit <= max_limit',
  });

export const hedgePolicy = z.strictObject({
  after: z
    .union([z.literal('p95'), duration])
    .default('p95')
    .meta({ description: "When to send the hedge: 'p95' (the route's live p95 time to response head) or a fixed duration." }),
  max_hedges: z.literal(1).default(1).meta({ description: 'Extra attempts per request (only 1 is supported).' }),
});

export const route = z
  .strictObject({
    name: z.string().min(1).optional(),
    match: routeMatch.default({}),
    cluster: z.string().min(1).optional(),
    weighted_clusters: z
      .array(z.strictObject({ cluster: z.string().min(1), weight: z.number().int().min(0) }))
      .min(1)
      .optional()
      .meta({ description: 'Split traffic between clusters by weight (canary, A/B).' }),
    redirect: z
      .strictObject({
        scheme: z.enum(['http', 'https']).optional(),
        host: z.string().optional(),
        port: port.optional(),
        path: z.string().startsWith('/').optional(),
        prefix_rewrite: z.string().optional(),
        status: z.literal([301, 302, 303, 307, 308]).default(301),
      })
      .optional(),
    direct_response: z
      .strictObject({
        status: z.number().int().min(100).max(599),
        body: z.string().default(''),
        headers: z.record(headerName, headerValue).default({}),
      })
      .optional(),
    prefix_rewrite: z
      .string()
      .regex(/^[\x21-\x7e]*$/, 'a path cannot contain spaces or control characters')
      .optional()
      .meta({ description: 'Replaces the matched prefix of the path.' }),
    host_rewrite: z
      .string()
      .regex(/^[\x21-\x7e]+$/, 'a host cannot contain spaces or control characters')
      .optional()
      .meta({ description: 'Replaces the Host / :authority sent upstream.' }),
    request_headers: headerMutation.optional(),
    response_headers: headerMutation.optional(),
    timeout: duration
      .default(15_000)
      .meta({ description: "Time until the response head arrives, all attempts and backoff included (0 disables); 504 UT beyond. A body still streaming after that is governed by the cluster's stream_idle_timeout." }),
    timeout_header_allowed: z
      .boolean()
      .optional()
      .meta({ description: "Honour a caller's x-sidecar-timeout request header (ms or duration) when it is earlier than the route timeout. Absent: only from an identified sidecar (a request carrying the hop marker, see listeners[].hop_marker and docs/mesh.md); true: from any caller; false: never." }),
    max_request_body: size.optional().meta({ description: 'Largest request body accepted on this route (413 beyond).' }),
    retry: retryPolicy.optional().meta({ description: 'Retry failed attempts (see docs/resilience.md). Absent: one attempt.' }),
    fault: faultPolicy.optional().meta({ description: 'Inject delays and aborts for resilience testing.' }),
    adaptive_concurrency: adaptiveConcurrencyPolicy
      .optional()
      .meta({ description: 'Shed load (503 LS) above a concurrency limit that adapts to upstream latency (see docs/resilience.md).' }),
    hedge: hedgePolicy
      .optional()
      .meta({ description: 'Send a second attempt to another endpoint when the first is slow; idempotent body-less requests only.' }),
    protobuf_bodies: protobufBodies
      .optional()
      .meta({ description: "JSON bodies cross the sidecar hop as protobuf of these message types, when both sidecars declare the same schema (see docs/payloads.md). Toward a peer: sidecar cluster: encode (400 for JSON that does not fit the request message); from a sidecar: decode for the app." }),
    hop_compression: hopCompression
      .optional()
      .meta({ description: 'Compress bodies on the sidecar hop, negotiated between the two sidecars, invisible to apps (see docs/payloads.md).' }),
    filters: filterList.meta({ description: "Route-level filters (see docs/filters.md), after the route's timeout and legacy filter keys, first entry outermost." }),
    filter_overrides: filterOverrides.meta({ description: "Per-route disable or config of the listener's filters, keyed by filter type." }),
  })
  .superRefine((r, ctx) => {
    const actions = ['cluster', 'weighted_clusters', 'redirect', 'direct_response'] as const;
    const set = actions.filter((a) => r[a] !== undefined);
    if (set.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          set.length === 0
            ? 'a route needs one action: cluster, weighted_clusters, redirect or direct_response'
            : `a route has exactly one action, found ${set.join(' and ')}`,
      });
    }
    if (r.weighted_clusters !== undefined && r.weighted_clusters.every((w) => w.weight === 0)) {
      // The runtime would send everything to the last cluster: almost certainly not what a canary at 0/0 meant.
      ctx.addIssue({ code: 'custom', path: ['weighted_clusters'], message: 'every weight is 0, so no cluster could be picked; give at least one cluster a weight above 0' });
    }
    if (r.prefix_rewrite !== undefined && r.match.prefix === undefined) {
      ctx.addIssue({ code: 'custom', path: ['prefix_rewrite'], message: 'prefix_rewrite needs match.prefix' });
    }
  });

export const listenerLimits = z.strictObject({
  max_header_bytes: size
    .default(60 * 1024)
    .meta({ description: 'Request line plus headers; 431 beyond, or 414 when the request line alone is over it (told apart only when the request line starts in the socket read that crossed the limit; a target that long which arrived over several reads gets 431). (HTTP/2: Node refuses any header block over 64 KiB with REFUSED_STREAM, whatever this says.)' }),
  max_uri_length: z.number().int().positive().default(8192).meta({ description: 'Request target length; 414 beyond.' }),
  max_headers_count: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(100)
    .meta({ description: "Header fields per request (Envoy's max_headers_count); 431 beyond." }),
  max_request_body: size.default(0).meta({ description: 'Default request body limit for routes (0 = unlimited); 413 beyond.' }),
  header_read_timeout: duration.default(10_000).meta({ description: 'Time to receive the full request head.' }),
  idle_timeout: duration.default(60_000).meta({ description: 'Close a downstream keep-alive connection idle this long (HTTP/2: GOAWAY, streams in flight finish; a session that does not answer a PING within 2 s is destroyed).' }),
  request_body_timeout: duration
    .default(60_000)
    .meta({
      description:
        "Longest wait for the next request body bytes while the sidecar is reading the body (nginx's client_body_timeout, 60 s); 408 SI beyond, or the stream is cut when the response has begun (0 disables).",
    }),
  response_write_timeout: duration
    .default(60_000)
    .meta({
      description:
        "Longest time the downstream may read nothing while response bytes wait for it (nginx's send_timeout, 60 s); the response is cut (DWT) and its upstream attempt cancelled (0 disables).",
    }),
  max_connections: z.number().int().positive().default(10_000),
  max_concurrent_streams: z
    .number()
    .int()
    .min(1)
    .max(2 ** 31 - 1)
    .default(100)
    .meta({ description: 'HTTP/2 streams a client may have open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS); streams past it are refused.' }),
});

export const forwardPolicy = z.strictObject({
  allow_passthrough: z
    .boolean()
    .default(false)
    .meta({ description: 'Forward requests whose host matches no route straight to that host.' }),
  allowed_hosts: z
    .array(z.string().min(1))
    .default(['*'])
    .meta({ description: 'Hosts that pass-through and CONNECT may reach (exact, *.suffix, or *).' }),
  allow_connect: z.boolean().default(true).meta({ description: 'Allow CONNECT tunnels (HTTPS through the proxy).' }),
  connect_ports: z.array(port).default([443]).meta({ description: 'Ports CONNECT may reach.' }),
  connect_timeout: duration.default(5_000),
  passthrough_headers: z
    .strictObject({
      via: z.boolean().default(false).meta({ description: 'Via names this sidecar and listener (off: an opaque pseudonym, still enough to refuse loops).' }),
      request_id: z.boolean().default(false).meta({ description: 'Add x-request-id when the app sent none.' }),
      forwarded: z.boolean().default(false).meta({ description: 'Add X-Forwarded-For, -Proto and -Host.' }),
      timeout: z.boolean().default(false).meta({ description: 'Announce the time left as x-sidecar-timeout.' }),
    })
    .default({ via: false, request_id: false, forwarded: false, timeout: false })
    .meta({ description: "Mesh headers added to pass-through requests (hosts outside the mesh); all off so the app's traffic to the internet does not show the mesh's topology." }),
});

/** Modern ciphers (TLS 1.2 ECDHE with AEAD; TLS 1.3 suites are always on). */
export const DEFAULT_CIPHERS =
  'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305';

const pemFile = z.string().min(1).meta({ description: 'Path of a PEM file (relative paths are taken from the working directory).' });
const tlsVersion = z.enum(['TLSv1.2', 'TLSv1.3']);

export const sniCertificate = z.strictObject({
  cert: pemFile.meta({ description: 'Certificate (and chain) PEM file.' }),
  key: pemFile.meta({ description: 'Private key PEM file.' }),
  server_names: z
    .array(z.string().regex(/^(\*\.)?[A-Za-z0-9.-]+$/, 'a host name, or *.suffix'))
    .optional()
    .meta({ description: 'SNI names this certificate serves (exact or *.example.com). Absent: the DNS names of the certificate.' }),
});

export const listenerTls = z
  .strictObject({
    mode: z
      .enum(['strict', 'permissive'])
      .default('strict')
      .meta({ description: 'strict: TLS only (a plaintext request gets 400 "this port expects TLS"). permissive: plaintext and TLS on one port, told apart by the first byte (for migrating to mTLS, as Istio PERMISSIVE).' }),
    cert: pemFile.meta({ description: 'Default certificate (and chain) PEM file: served when no sni entry matches.' }),
    key: pemFile.meta({ description: 'Private key PEM file of cert.' }),
    sni: z.array(sniCertificate).default([]).meta({ description: 'More certificates, picked by the SNI name the client asks for (exact names before *.wildcards).' }),
    client_ca: pemFile.optional().meta({ description: 'Trust bundle (PEM) for client certificates: with it, clients are asked for a certificate.' }),
    require_client_cert: z
      .boolean()
      .default(false)
      .meta({ description: 'Refuse clients (at the handshake) without a certificate that verifies against client_ca: mutual TLS.' }),
    allowed_identities: z
      .array(z.string().refine(isIdentityPattern, 'expected a SPIFFE ID or pattern such as spiffe://example.org/ns/*/sa/web (a * stands for one path segment, a trailing /** for the rest)'))
      .optional()
      .meta({ description: 'With client_ca: client certificates must carry one of these SPIFFE IDs (or patterns); others are refused at the handshake (identity_mismatch).' }),
    forward_identity_header: headerName
      .optional()
      .meta({ description: "Header that carries the client's verified SPIFFE ID to the app. A copy sent by the client is always removed." }),
    min_version: tlsVersion.default('TLSv1.2').meta({ description: 'Oldest TLS version accepted (TLS 1.3 is preferred when both sides have it).' }),
    ciphers: z.string().min(1).default(DEFAULT_CIPHERS).meta({ description: 'OpenSSL cipher list (TLS 1.2 and 1.3 suites).' }),
    handshake_timeout: duration.default(10_000).meta({ description: 'A TLS handshake not finished by then is cut.' }),
    expiry_warning: duration.default(7 * 86_400_000).meta({ description: 'Log a warning when a certificate expires within this time (checked on load and hourly).' }),
  })
  .superRefine((t, ctx) => {
    if (t.require_client_cert && t.client_ca === undefined) ctx.addIssue({ code: 'custom', path: ['client_ca'], message: 'require_client_cert needs client_ca (the trust bundle client certificates are verified against)' });
    if (t.allowed_identities !== undefined && t.client_ca === undefined) ctx.addIssue({ code: 'custom', path: ['allowed_identities'], message: 'allowed_identities needs client_ca: without client certificates there is no identity to check' });
    if (t.forward_identity_header !== undefined && t.client_ca === undefined) ctx.addIssue({ code: 'custom', path: ['forward_identity_header'], message: 'forward_identity_header needs client_ca: without client certificates there is no identity to forward' });
  })
  .meta({ description: 'Terminate TLS on this listener (HTTP/1.1 and HTTP/2 by ALPN on one port). Files are reloaded when they change or on SIGHUP.' });

export const clusterTls = z
  .strictObject({
    sni: z.string().min(1).optional().meta({ description: 'Server name sent and verified. Absent: the endpoint host when it is a name (an IP sends no SNI and is verified against IP SANs).' }),
    ca: pemFile.optional().meta({ description: "Trust bundle (PEM) the upstream's certificate must verify against. Absent: the system roots." }),
    cert: pemFile.optional().meta({ description: 'Client certificate PEM file (mutual TLS).' }),
    key: pemFile.optional().meta({ description: 'Private key PEM file of cert.' }),
    expected_identities: z
      .array(z.string().refine(isIdentityPattern, 'expected a SPIFFE ID or pattern such as spiffe://example.org/ns/*/sa/web (a * stands for one path segment, a trailing /** for the rest)'))
      .optional()
      .meta({ description: "SPIFFE IDs (or patterns) the upstream's certificate must carry; with them, the name check is replaced by this identity check." }),
    min_version: tlsVersion.default('TLSv1.2'),
    ciphers: z.string().min(1).default(DEFAULT_CIPHERS),
  })
  .superRefine((t, ctx) => {
    if ((t.cert === undefined) !== (t.key === undefined)) ctx.addIssue({ code: 'custom', path: [t.cert === undefined ? 'cert' : 'key'], message: 'cert and key go together' });
  })
  .meta({ description: 'Connect to the endpoints over TLS (verified by default). Files are reloaded when they change or on SIGHUP.' });

export const listener = z.strictObject({
  name: z.string().regex(/^[a-zA-Z0-9_.-]+$/, 'use letters, digits, _ . -'),
  address: z.string().default('127.0.0.1'),
  port,
  mode: z.enum(['reverse', 'forward']).default('reverse'),
  protocol: z
    .enum(['auto', 'http1'])
    .default('auto')
    .meta({ description: 'auto: HTTP/1.1 and HTTP/2 cleartext (prior knowledge) on one port.' }),
  limits: listenerLimits.default(listenerLimits.parse({})),
  tls: listenerTls.optional(),
  forward: forwardPolicy.default(forwardPolicy.parse({})),
  expose_error_details: z
    .boolean()
    .optional()
    .meta({ description: 'Send callers the full cause in x-sidecar-error (endpoint addresses included). Absent: on for a listener bound to loopback, off otherwise (callers then get the flag and its generic meaning; the access log keeps the full cause).' }),
  request_id_in_response: z
    .boolean()
    .default(false)
    .meta({ description: "Put the request's x-request-id on every answer (Envoy's always_set_request_id_in_response), so a caller can hand it to `sidecar explain`. Answers the sidecar makes itself always carry it." }),
  hop_marker: z
    .enum(['trust', 'ignore'])
    .default('trust')
    .meta({ description: "The x-sidecar-hop request header another sidecar adds toward `peer: sidecar` clusters (always removed before forwarding). trust: a request carrying it comes from a sidecar (its x-sidecar-timeout is honoured), on a listener that verifies client certificates only when the peer presented a verified identity; ignore: never trusted (use it on listeners the app, not a sidecar, sends to)." }),
  grpc_local_answers: z
    .boolean()
    .default(true)
    .meta({ description: 'Answer gRPC clients (content-type application/grpc*) the sidecar\'s own errors gRPC-style: HTTP 200, trailers-only, with grpc-status (mapped from the flag: UNAVAILABLE, DEADLINE_EXCEEDED, UNIMPLEMENTED, PERMISSION_DENIED, ...), the cause and flag in grpc-message, and x-sidecar-flag / x-sidecar-error as trailing metadata. false: the HTTP status and a text body, as for every client.' }),
  path_normalization: z
    .strictObject({
      enabled: z.boolean().default(true).meta({ description: 'false: paths pass as they arrived (only for upstreams that normalize the same way themselves).' }),
      merge_slashes: z.boolean().default(true).meta({ description: '//a///b becomes /a/b.' }),
      encoded_slashes: z
        .enum(['reject', 'keep', 'decode'])
        .default('reject')
        .meta({ description: '%2F and %5C in a path. reject: 400; keep: forwarded as data, never a separator for matching; decode: become / (then separators).' }),
      backslashes: z.enum(['reject', 'convert', 'keep']).default('reject').meta({ description: 'A raw backslash in a path. reject: 400; convert: becomes /; keep: forwarded as is.' }),
      path_params: z.enum(['strip', 'reject', 'keep']).default('strip').meta({ description: ';params in a segment. strip: /admin;x becomes /admin and /..;/ is a dot segment; reject: 400; keep: data.' }),
      case: z.enum(['keep', 'lower']).default('keep').meta({ description: 'keep: case is data (route matching is case-sensitive); lower: lowercase the path, for case-insensitive upstreams.' }),
    })
    .default({ enabled: true, merge_slashes: true, encoded_slashes: 'reject', backslashes: 'reject', path_params: 'strip', case: 'keep' })
    .meta({ description: 'Canonical form of every request path before routing, filters and rate-limit keys; the upstream receives it (see docs/path-normalization.md). Percent-encoded unreserved characters are decoded and dot segments resolved; invalid escapes, %00, raw bytes outside RFC 3986 and fragments are refused (400 DPE).' }),
  filters: filterList.meta({ description: 'Listener-level filters (see docs/filters.md): run for every request of the listener, upgrades and CONNECT included, before its route\'s own pipeline; first entry outermost.' }),
  routes: z.array(route).default([]),
});

export const endpoint = z.union([
  hostPort,
  z.strictObject({ address: hostPort, weight: z.number().int().min(1).max(1000).default(1) }),
]);

export const loadBalancer = z.strictObject({
  policy: z.enum(['round_robin', 'least_request', 'random', 'ring_hash']).default('round_robin'),
  hash_on: z
    .strictObject({
      header: headerName.optional(),
      cookie: z.string().optional(),
      source_ip: z.boolean().optional(),
    })
    .refine((h) => [h.header, h.cookie, h.source_ip].filter((x) => x !== undefined).length === 1, {
      message: 'hash_on takes exactly one of header, cookie, source_ip',
    })
    .optional()
    .meta({ description: 'For ring_hash: what to hash on. Requests without it are spread at random.' }),
  ring_size: z.number().int().min(64).max(1 << 20).default(1024),
});

export const retryBudget = z
  .strictObject({
    retry_ratio: z.number().min(0).max(10).default(0.2).meta({ description: 'Retries allowed per original request over ttl.' }),
    min_retries_per_second: z.number().min(0).default(10).meta({ description: 'Retries always allowed, so low-traffic routes can retry.' }),
    ttl: duration
      .default(10_000)
      .refine((ms) => ms >= 1000, 'ttl must be at least 1s')
      .meta({ description: 'Window over which requests and retries are counted (at least 1s).' }),
  })
  .meta({ description: 'Caps retries to this cluster (all routes together) so retries cannot multiply an outage. Absent: the defaults below.' });

export const circuitBreakers = z
  .strictObject({
    max_connections: z
      .number()
      .int()
      .positive()
      .default(1024)
      .meta({ description: 'Caps each endpoint pool at min(pool.max_connections, this).' }),
    max_pending_requests: z
      .number()
      .int()
      .nonnegative()
      .default(1024)
      .meta({ description: 'Requests waiting for a pooled connection, cluster-wide; 503 UO beyond.' }),
    max_requests: z.number().int().nonnegative().default(1024).meta({ description: 'Requests in flight to the cluster; 503 UO beyond.' }),
    max_retries: z.number().int().nonnegative().default(3).meta({ description: 'Retries in flight to the cluster; beyond, requests are not retried.' }),
  })
  .meta({ description: 'Hard concurrency caps per cluster (Envoy circuit breakers). Absent: the defaults below.' });

export const outlierDetection = z
  .strictObject({
    consecutive_5xx: z
      .number()
      .int()
      .nonnegative()
      .default(5)
      .meta({ description: 'Consecutive 5xx answers (local-origin failures included) that eject an endpoint; 0 disables.' }),
    consecutive_gateway_failure: z
      .number()
      .int()
      .nonnegative()
      .default(5)
      .meta({ description: 'Consecutive 502/503/504 answers (local-origin failures included) that eject an endpoint; 0 disables.' }),
    interval: duration
      .default(10_000)
      .refine((ms) => ms > 0, 'interval must be > 0')
      .meta({ description: 'Once an endpoint has been back for base_ejection_time, its ejection multiplier drops by one per interval.' }),
    base_ejection_time: duration
      .default(30_000)
      .refine((ms) => ms > 0, 'base_ejection_time must be > 0')
      .meta({ description: 'The first ejection lasts this long; the n-th ejection in a row n times as long.' }),
    max_ejection_time: duration
      .default(300_000)
      .refine((ms) => ms > 0, 'max_ejection_time must be > 0')
      .meta({ description: 'Cap on one ejection.' }),
    max_ejection_percent: z
      .number()
      .min(0)
      .max(100)
      .default(10)
      .meta({ description: 'Never eject more than this share (percent) of the cluster endpoints at once.' }),
    always_eject_one: z
      .boolean()
      .default(true)
      .meta({ description: 'Allow one ejection even when max_ejection_percent rounds to zero endpoints (small clusters).' }),
  })
  .meta({ description: 'Passive outlier detection: endpoints that keep failing are taken out of the balancer for a while. Absent: off.' });

const expectedStatus = z.union([
  z.number().int().min(100).max(599),
  z
    .string()
    .regex(/^[1-5]\d\d-[1-5]\d\d$/, 'use a status such as 200 or a range such as "200-399"')
    .refine((r) => Number(r.slice(0, 3)) <= Number(r.slice(4)), 'a range runs from low to high, such as "200-399"'),
]);

export const healthCheck = z
  .strictObject({
    path: z.string().startsWith('/').default('/healthz').meta({ description: 'Path probed with GET.' }),
    interval: duration
      .default(5_000)
      .refine((ms) => ms >= 10, 'interval must be at least 10ms')
      .meta({ description: 'Time between probes of one endpoint.' }),
    interval_jitter: z
      .number()
      .min(0)
      .max(100)
      .default(10)
      .meta({ description: 'Percent of interval: each wait is lengthened by a random 0..interval_jitter % of interval.' }),
    timeout: duration
      .default(1_000)
      .refine((ms) => ms > 0, 'timeout must be > 0')
      .meta({ description: 'A probe without a response head within this time fails.' }),
    healthy_threshold: z.number().int().min(1).default(2).meta({ description: 'Passing probes in a row that make an unhealthy endpoint healthy.' }),
    unhealthy_threshold: z.number().int().min(1).default(3).meta({ description: 'Failing probes in a row that make an endpoint unhealthy.' }),
    expected_statuses: z
      .array(expectedStatus)
      .min(1)
      .default(['200-399'])
      .meta({ description: 'Statuses that pass: numbers and/or inclusive ranges such as "200-399".' }),
    host: z.string().min(1).optional().meta({ description: 'Host header of the probes (default: the endpoint address).' }),
  })
  .meta({ description: 'Active health checks: periodic HTTP/1.1 GET probes per endpoint; unhealthy endpoints leave the balancer. Absent: off.' });

/** An etcd v3 store the sidecar talks to (discovery, registration, config). */
export const etcdStore = z.strictObject({
  endpoints: z
    .array(z.string().regex(/^https?:\/\/[^/\s]+$/, 'an etcd client URL such as http://127.0.0.1:2379'))
    .min(1)
    .meta({ description: 'Client URLs of the etcd cluster, e.g. ["http://127.0.0.1:2379"].' }),
  timeout: duration
    .default(2_000)
    .refine((ms) => ms > 0, 'timeout must be > 0')
    .meta({ description: 'Deadline of one call (read, watch creation, lease grant); also the first wait before reconnecting (then at most 2 s between tries).' }),
});

export const SERVICE_PREFIX = '/sidecar/services/';

export const discovery = z
  .strictObject({
    file: z
      .strictObject({
        path: z.string().min(1).meta({ description: 'A YAML or JSON file holding `endpoints: [...]` (same entries as a cluster\'s endpoints); watched, atomic-rename friendly. A relative path is taken from the working directory.' }),
      })
      .optional()
      .meta({ description: 'Filesystem discovery (as Envoy\'s filesystem EDS): the file\'s endpoints replace the cluster\'s set whenever it changes, without a reload.' }),
    dns: z
      .strictObject({
        name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'a DNS name').meta({ description: 'The name to resolve (for SRV, e.g. _http._tcp.users.example).' }),
        type: z.enum(['A', 'AAAA', 'A_AAAA', 'SRV']).default('A').meta({ description: 'A, AAAA, A_AAAA (both) with `port`; SRV: each record\'s target, port, weight and priority (the best priority with an available endpoint takes the traffic; the next takes over when it fails).' }),
        port: port.optional().meta({ description: 'Port of every A/AAAA endpoint (required for those types).' }),
        servers: z.array(hostPort).min(1).optional().meta({ description: 'Resolvers as ip:port; absent: the system\'s (/etc/resolv.conf).' }),
        ttl_floor: duration.default(1_000).meta({ description: 'Never look again sooner than this, whatever the TTL (also the retry delay after a failed lookup).' }),
        ttl_ceiling: duration.default(300_000).meta({ description: 'Look again at least this often, whatever the TTL.' }),
        timeout: duration.default(2_000).refine((ms) => ms > 0, 'timeout must be > 0').meta({ description: 'Per-query timeout (two tries).' }),
      })
      .optional()
      .meta({ description: 'DNS discovery, resolved on a timer off the request path; a failed or empty lookup keeps the last good set and counts as an error.' }),
    etcd: etcdStore
      .extend({
        service: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, _ . -').meta({ description: 'The service whose endpoints to follow: the keys under <prefix><service>/.' }),
        prefix: z.string().min(1).default(SERVICE_PREFIX).meta({ description: 'Key prefix of all services; one key per endpoint: <prefix><service>/<host:port>, value empty or JSON { "weight": 1, "zone": "a" }.' }),
      })
      .optional()
      .meta({ description: 'etcd v3 discovery: the service\'s keys are read, then watched from that revision (no polling); after a disconnect they are read again and the watch restarts from the new read\'s revision.' }),
    empty_grace: z
      .union([z.literal('never'), duration])
      .default(30_000)
      .meta({ description: 'An update that would leave the cluster with no endpoints is applied only after this long with no non-empty update in between ("never": not at all), so a bad publish cannot black-hole traffic. 0 applies it at once.' }),
  })
  .superRefine((d, ctx) => {
    const set = (['file', 'dns', 'etcd'] as const).filter((k) => d[k] !== undefined);
    if (set.length !== 1) ctx.addIssue({ code: 'custom', path: [], message: set.length === 0 ? 'discovery needs one of file, dns, etcd' : `discovery takes one of file, dns, etcd, not ${set.join(' and ')}` });
    if (d.dns !== undefined && d.dns.type !== 'SRV' && d.dns.port === undefined) ctx.addIssue({ code: 'custom', path: ['dns', 'port'], message: `dns type ${d.dns.type} needs port (SRV records carry their own)` });
    if (d.dns !== undefined && d.dns.ttl_floor > d.dns.ttl_ceiling) ctx.addIssue({ code: 'custom', path: ['dns', 'ttl_floor'], message: 'ttl_floor is above ttl_ceiling' });
  })
  .meta({ description: 'Where the cluster\'s endpoints come from at run time (one of file, dns, etcd; see docs/discovery.md). Absent: the static `endpoints` list. A source that cannot be read or is invalid keeps the last good set; `endpoints`, if given, is the set used until the source first delivers.' });

/** Registration of this sidecar's app in etcd, so other sidecars' etcd discovery finds it. */
export const register = etcdStore
  .extend({
    service: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, _ . -').meta({ description: 'The service name others discover it under.' }),
    address: hostPort.meta({ description: 'What others dial: usually this sidecar\'s inbound listener, host:port.' }),
    prefix: z.string().min(1).default(SERVICE_PREFIX).meta({ description: 'As discovery.etcd.prefix.' }),
    weight: z.number().int().min(1).max(1000).default(1),
    zone: z.string().min(1).optional().meta({ description: 'Locality published with the endpoint (locality-aware balancing).' }),
    ttl: duration
      .default(10_000)
      .refine((ms) => ms >= 2_000, 'ttl must be at least 2s (etcd leases count in seconds)')
      .meta({ description: 'Lease TTL: a host that crashes (stops keeping the lease alive) vanishes from discovery this long after.' }),
    health_url: z
      .string()
      .regex(/^https?:\/\//, 'an http(s) URL')
      .optional()
      .meta({ description: 'Registration waits until a GET here answers 2xx (polled every second); absent: registers at once.' }),
  })
  .meta({ description: 'Registers the app in etcd under a lease kept alive while the sidecar runs (docs/discovery.md). Withdrawn first on drain (before listeners stop), and by the lease expiring if the host dies.' });

/** HTTP/2 session keep-alive toward a cluster's endpoints (protocol h2c or h2). */
export const h2Upstream = z
  .strictObject({
    keepalive_interval: duration
      .default(10_000)
      .meta({
        description:
          "h2c/h2: send a PING on every session this often, busy or idle, to find dead connections (gRPC's keepalive time; 0 disables). Sidecars and node:http2 servers answer any rate. grpc-go (and other gRPC) servers by default allow a PING only every 5 min while they send nothing, and answer more with GOAWAY ENHANCE_YOUR_CALM: an idle session is then simply replaced, but a long stream on which the server stays silent fails; set 0 or at least 5m for such upstreams.",
      }),
    keepalive_timeout: duration
      .default(5_000)
      .meta({ description: "h2c/h2: a PING not acknowledged within this closes its session (streams on it fail with UC; new requests go to a new session), gRPC's keepalive timeout." }),
  })
  .meta({ description: 'HTTP/2 toward the endpoints (protocol h2c or h2). Session limits are under `pool`: max_connections (sessions per endpoint), max_concurrent_streams, max_requests_per_connection (streams per session over its life), keep_alive_timeout (idle sessions closed).' });

export const cluster = z
  .strictObject({
    name: z.string().regex(/^[a-zA-Z0-9_.-]+$/, 'use letters, digits, _ . -'),
    endpoints: z.array(endpoint).min(1).optional().meta({ description: 'Static endpoints; required unless `discovery` is set.' }),
    discovery: discovery.optional(),
    peer: z
      .enum(['app', 'sidecar'])
      .default('app')
      .meta({ description: 'What the endpoints are. sidecar: other sidecars (the mesh hop, docs/mesh.md): requests carry the hop marker x-sidecar-hop: 1, and protocol defaults to HTTP/2 (h2 with tls, h2c without). app: plain HTTP servers; they never see the marker.' }),
    protocol: z
      .enum(['http1', 'h2c', 'h2'])
      .optional()
      .meta({ description: 'http1; h2c: HTTP/2 cleartext (prior knowledge); h2: HTTP/2 over TLS (needs tls). With tls, http1 is HTTP/1.1 over TLS. Absent: http1, or for peer: sidecar h2 with tls and h2c without.' }),
    tls: clusterTls.optional(),
    lb: loadBalancer.default(loadBalancer.parse({})),
    connect_timeout: duration.default(5_000),
    pool: z
      .strictObject({
        max_connections: z.number().int().positive().default(128).meta({ description: 'Per endpoint.' }),
        keep_alive_timeout: duration.default(60_000).meta({ description: 'How long an idle pooled connection is kept.' }),
        max_requests_per_connection: z.number().int().nonnegative().default(0).meta({ description: '0 = unlimited.' }),
        max_concurrent_streams: z
          .number()
          .int()
          .positive()
          .default(100)
          .meta({ description: 'h2c: streams carried by one connection before another is opened; the upstream\'s SETTINGS_MAX_CONCURRENT_STREAMS lowers it.' }),
        max_share_per_downstream: z
          .number()
          .gt(0)
          .max(1)
          .default(0.5)
          .meta({
            description:
              "HTTP/1.1 pools: while other downstream connections wait for a connection of a full endpoint pool, one downstream connection holding this share of it or more is refused (503 UO), and freed connections go first to downstreams under their share. A lone downstream still gets the whole pool (1 disables).",
          }),
        reclaim_stalled_after: duration
          .default(2_000)
          .meta({
            description:
              'HTTP/1.1 pools, under the same contention: a connection held by a downstream at its share whose response that downstream has left unread (paused) this long is cut (DWT) and handed to a waiting downstream (0 disables).',
          }),
        reclaim_upload_min_rate: size
          .default(500)
          .meta({
            description:
              "HTTP/1.1 pools, while a downstream under its share waits for a connection of a full endpoint pool: a request whose body has come at under this many bytes per second for reclaim_stalled_after is cut (408 SI) and its connection handed to the waiter, whatever its downstream's share (Apache's MinRate, 500 bytes/s). 0 disables.",
          }),
      })
      .default({ max_connections: 128, keep_alive_timeout: 60_000, max_requests_per_connection: 0, max_concurrent_streams: 100, max_share_per_downstream: 0.5, reclaim_stalled_after: 2_000, reclaim_upload_min_rate: 500 }),
    stream_idle_timeout: duration
      .default(300_000)
      .meta({ description: 'Abort an upstream response that sends no bytes for this long.' }),
    h2: h2Upstream.default(h2Upstream.parse({})),
    retry_budget: retryBudget.default(retryBudget.parse({})),
    circuit_breakers: circuitBreakers.default(circuitBreakers.parse({})),
    outlier_detection: outlierDetection.optional(),
    health_check: healthCheck.optional(),
    locality: z
      .strictObject({
        local_zone: z.string().min(1).meta({ description: 'This sidecar\'s zone: endpoints whose source gives this zone are preferred.' }),
        min_available_percent: z
          .number()
          .min(0)
          .max(100)
          .default(70)
          .meta({ description: 'Prefer the local zone while at least this percent of its endpoints are available (healthy and not ejected); below, spill over to every zone.' }),
      })
      .optional()
      .meta({ description: 'Locality-aware balancing, when the discovery source gives endpoints a zone (etcd). Absent: zones are ignored.' }),
    panic_threshold: z
      .number()
      .min(0)
      .max(100)
      .default(50)
      .meta({ description: 'Percent: when fewer endpoints than this are healthy and not ejected, route to all of them (0 disables).' }),
  })
  .superRefine((c, ctx) => {
    // For peer: sidecar the protocol is best left out (it follows tls); say so where an explicit one contradicts tls.
    const hint = c.peer === 'sidecar' ? ' (or leave protocol out: peer: sidecar picks h2 with tls, h2c without)' : '';
    if (c.protocol === 'h2' && c.tls === undefined) ctx.addIssue({ code: 'custom', path: ['protocol'], message: `protocol h2 is HTTP/2 over TLS and needs tls; use h2c for cleartext HTTP/2${hint}` });
    if (c.protocol === 'h2c' && c.tls !== undefined) ctx.addIssue({ code: 'custom', path: ['protocol'], message: `h2c is cleartext HTTP/2; with tls use protocol h2${hint}` });
    if (c.endpoints === undefined && c.discovery === undefined) {
      ctx.addIssue({ code: 'custom', path: ['endpoints'], message: 'endpoints needs at least 1 entry (or set discovery)' });
    }
    if (c.lb.policy === 'ring_hash' && !c.lb.hash_on) {
      ctx.addIssue({ code: 'custom', path: ['lb', 'hash_on'], message: 'ring_hash needs hash_on' });
    }
  })
  // The protocol left out follows the peer: HTTP/2 between sidecars (over TLS when the cluster has tls), else HTTP/1.1.
  .transform((c) => ({ ...c, protocol: c.protocol ?? defaultProtocol(c.peer, c.tls !== undefined) }));

/** A cluster's protocol when the config leaves it out. */
export const defaultProtocol = (peer: 'app' | 'sidecar', tls: boolean): 'http1' | 'h2c' | 'h2' => (peer === 'sidecar' ? (tls ? 'h2' : 'h2c') : 'http1');

export const debugRequests = z.strictObject({
  enabled: z.boolean().default(true).meta({ description: 'Keep recent requests and their stories for GET /debug/requests (off: one branch per request).' }),
  max_requests: z.number().int().min(0).max(100_000).default(256).meta({ description: 'Successful, fast requests kept (a ring: the oldest go first).' }),
  max_failed_requests: z.number().int().min(0).max(100_000).default(256).meta({ description: 'Failed or slow requests kept, in a ring of their own so successes do not push them out.' }),
  max_bytes: size.default(1 << 20).meta({ description: 'Memory each of the two rings may hold (estimated from the records).' }),
  slow_threshold: duration.default(1000).meta({ description: 'A request at least this slow is kept with the failed ones.' }),
  max_ok_per_second: z
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .default(200)
    .meta({
      description:
        'Successful, fast requests recorded per second at most (the rest are counted, not kept: under load the ring then spans more than the last instant, and retains less). Failed and slow requests are always kept.',
    }),
});

export const dashboard = z.strictObject({
  enabled: z.boolean().default(true).meta({ description: 'Serve the live page GET /dashboard (server-sent events at /dashboard/events; the ticker runs only while a browser is connected).' }),
});

export const latencyHistory = z.strictObject({
  enabled: z
    .boolean()
    .default(true)
    .meta({ description: 'Keep the per-minute latency histograms of every listener, route, cluster and endpoint that GET /latency and the dashboard show (off: one branch per request, and both show no series).' }),
});

export const mergeApp = z.strictObject({
  url: z
    .string()
    .regex(/^http:\/\/[^/\s]+\/\S*$/, 'an http:// URL of the app\'s metrics, such as http://127.0.0.1:9100/metrics')
    .meta({ description: 'The app\'s own metrics endpoint (Prometheus text or OpenMetrics), fetched on every scrape of /metrics.' }),
  timeout: duration.default(2000).meta({ description: 'Give up on the app after this long: its series are left out, sidecar_app_metrics_scrape_ok is 0, and the scrape still answers.' }),
  max_bytes: size.default(8 << 20).meta({ description: 'A larger answer from the app is left out as a failure.' }),
  label_name: z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'a Prometheus label name').default('source').meta({ description: 'Label added to every app series (an app label of that name becomes exported_<name>).' }),
  label_value: z.string().min(1).default('app').meta({ description: 'Value of label_name on the app\'s series.' }),
});

export const metricsOptions = z.strictObject({
  process: z.boolean().default(true).meta({ description: 'Export process_* and nodejs_* series (CPU, memory, file descriptors, event loop, GC, handles); computed when scraped.' }),
  max_endpoint_series: z
    .number()
    .int()
    .min(0)
    .max(100_000)
    .default(100)
    .meta({ description: 'Per-endpoint upstream series (requests, failures, latency, connections) for at most this many endpoints; the others count under endpoint="other" of their cluster. 0: none (no per-attempt timing).' }),
  merge_app: mergeApp.optional().meta({ description: 'Serve the app\'s metrics after the sidecar\'s on /metrics, so one scrape target covers the pod.' }),
});

export const admin = z
  .strictObject({
    debug_requests: debugRequests.default(debugRequests.parse({})),
    metrics: metricsOptions.default(metricsOptions.parse({})),
    dashboard: dashboard.default(dashboard.parse({})),
    latency_history: latencyHistory.default(latencyHistory.parse({})),
    address: z.string().default('127.0.0.1').meta({ description: 'Loopback by default; never 0.0.0.0 unless set here.' }),
    port: port.default(15000),
    enabled: z.boolean().default(true),
    token_file: z
      .string()
      .min(1)
      .optional()
      .meta({
        description:
          'A file holding a bearer token (a trailing newline is ignored): every admin request except GET /ready and /live (including /config, /clusters, /metrics and every POST) then needs "Authorization: Bearer <token>", else 401. Re-read on every reload (SIGHUP).',
      }),
    token_env: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'As token_file, but the name of an environment variable holding the token (read at start and on every reload).' }),
  })
  .superRefine((a, ctx) => {
    if (a.token_file !== undefined && a.token_env !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['token_env'], message: 'set token_file or token_env, not both' });
    } else if (a.enabled && a.token_file !== undefined) {
      // A missing token file is caught by validate and refused by a reload here, with the YAML line (the sidecar reads
      // it again when applying the config).
      const read = readSecretFile(a.token_file);
      if (!read.ok) ctx.addIssue({ code: 'custom', path: ['token_file'], message: read.problem });
    }
  });

/** Routes and clusters from a store: the key's YAML is laid over this file (docs/config-store.md). */
export const configSource = z
  .strictObject({
    etcd: etcdStore
      .extend({
        key: z.string().min(1).meta({ description: 'The key holding a YAML document with the store-managed part of the config (listeners, clusters, ...); its top-level keys replace the file\'s.' }),
      })
      .meta({ description: 'Watched (no polling); each change is validated as a file is (errors name the key and line) and applied through the reload path, atomically; an invalid document or an unreachable store keeps the last good config.' }),
  })
  .meta({ description: 'Take the dynamic part of the config from a store. The file keeps the bootstrap part (admin, config_source, and whatever the store does not set).' });

/** The config agent: etcd keys written as files for the app. */
export const configSync = etcdStore
  .extend({
    directory: z.string().min(1).meta({ description: 'Directory shared with the app; files are written here (atomically: a temp file, then rename).' }),
    files: z
      .array(
        z.strictObject({
          key: z.string().min(1).meta({ description: 'The etcd key to follow.' }),
          path: z
            .string()
            .min(1)
            .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), 'a path inside directory (no leading / and no ..)')
            .meta({ description: 'File name (relative to directory) the value is written to.' }),
          mode: z
            .string()
            .regex(/^0?[0-7]{3}$/, 'an octal mode such as 0640')
            .default('0644')
            .meta({ description: 'Permissions of the written file.' }),
        }),
      )
      .min(1),
    notify: z
      .strictObject({
        signal: z
          .strictObject({
            pid_file: z.string().min(1).meta({ description: 'File holding the app\'s process id.' }),
            signal: z.enum(['SIGHUP', 'SIGUSR1', 'SIGUSR2']).default('SIGHUP'),
          })
          .optional(),
        http: z
          .strictObject({
            url: z.string().regex(/^https?:\/\//, 'an http(s) URL'),
            method: z.enum(['POST', 'PUT', 'GET']).default('POST'),
          })
          .optional(),
      })
      .optional()
      .meta({ description: 'Told after files changed (once per batch): a signal to a process, and/or an HTTP call.' }),
  })
  .meta({ description: 'The config agent (docs/config-store.md): chosen etcd keys kept as files in a directory, for apps that read files. A deleted key removes its file.' });

export const accessLog = z
  .strictObject({
    enabled: z.boolean().default(true),
    path: z.string().default('stdout').meta({ description: '"stdout", "stderr" or a file path. A file is opened again by its path on SIGUSR1 or admin POST /reopen_logs (logrotate\'s postrotate).' }),
    format: z
      .enum(['json', 'ecs', 'text'])
      .default('json')
      .meta({ description: 'json: the sidecar\'s own fields (docs/access-log.md); ecs: Elastic Common Schema field names, nested, for Filebeat/Logstash/Fluentd into Elasticsearch or Splunk unchanged; text: the Envoy-style text_format.' }),
    text_format: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'With format: text, an Envoy-style format string, e.g. "%START_TIME% %METHOD% %PATH% %RESPONSE_CODE% %RESPONSE_FLAGS% %DURATION% %REQ(X-REQUEST-ID)%" (operators in docs/access-log.md). Default: Envoy\'s default format.' }),
    service_name: z.string().min(1).optional().meta({ description: 'ECS service.name (format: ecs); the listener\'s name when unset.' }),
    filter: z
      .strictObject({
        only_errors: z.boolean().default(false).meta({ description: 'Log responses >= 500 and requests with a response flag (the sidecar\'s own failures, including 499 downstream disconnects).' }),
        slower_than: duration.optional().meta({ description: 'Log requests that took at least this long.' }),
        ratio: z.number().min(0).max(1).optional().meta({ description: 'Log this share of the other requests (0..1), chosen by a hash of the request id, so every hop that shares the id keeps the same requests.' }),
      })
      .optional()
      .meta({ description: 'Which requests get a line: a request is logged when it passes any test set, e.g. every error and every slow request plus 1% of the rest. Unset: every request (nothing is evaluated per request).' }),
    request_headers: z.array(headerName).default([]).meta({ description: 'Request headers (as the filters left them) logged in the json format under request_headers, in ecs under sidecar.request_headers; text formats use %REQ(name)%.' }),
    response_headers: z.array(headerName).default([]).meta({ description: 'Response headers logged in the json format under response_headers, in ecs under sidecar.response_headers; text formats use %RESP(name)%.' }),
    sensitive_headers: z
      .array(headerName)
      .default([])
      .meta({ description: 'Headers whose values are never logged (access log in any format, admin /config), added to authorization, cookie, set-cookie, proxy-authorization, x-api-key and the headers the api_key and jwt_authn filters read. A listed one that is present shows as [redacted].' }),
  })
  .superRefine((a, ctx) => {
    if (a.text_format !== undefined && a.format !== 'text') ctx.addIssue({ code: 'custom', path: ['text_format'], message: `text_format needs format: text (format is ${a.format})` });
    if (a.format === 'text' && (a.request_headers.length > 0 || a.response_headers.length > 0)) {
      ctx.addIssue({ code: 'custom', path: [a.request_headers.length > 0 ? 'request_headers' : 'response_headers'], message: 'format text logs headers with %REQ(name)% / %RESP(name)% in text_format, not request_headers / response_headers' });
    }
    if (a.text_format === undefined) return;
    try {
      compileFormat(a.text_format, sensitiveHeaderSet(a.sensitive_headers));
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      ctx.addIssue({ code: 'custom', path: ['text_format'], message: err.message });
    }
  })
  .meta({ description: 'The access log: one line per request (docs/access-log.md).' });

export const configSchema = z
  .strictObject({
    admin: admin.default(admin.parse({})),
    access_log: accessLog.default(accessLog.parse({})),
    log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    drain_delay: duration
      .default(5_000)
      .meta({ description: 'On SIGTERM (or POST /drain then /quit): /ready fails at once, listeners keep accepting this long (answering with Connection: close / GOAWAY so callers move away), then stop accepting. As Envoy\'s drain time and Istio\'s terminationDrainDuration.' }),
    drain_timeout: duration
      .default(30_000)
      .meta({ description: 'After drain_delay (on SIGTERM) or after a reload, how long in-flight requests may finish before their connections are cut; after a reload the old config\'s clusters (health checks, pools) are released then at the latest.' }),
    watch: z.boolean().default(true).meta({ description: 'Reload when the config file changes (SIGHUP always reloads).' }),
    allow_no_listeners: z.boolean().default(false).meta({
      description:
        'Let a reload apply a config with no listeners while listeners are serving. Off, such a reload (often a file caught half-written) is refused and the running config stays; an empty file is always refused on reload.',
    }),
    listeners: z.array(listener).default([]),
    clusters: z.array(cluster).default([]),
    register: register.optional(),
    config_source: configSource.optional(),
    config_sync: configSync.optional(),
  })
  .superRefine((c, ctx) => {
    for (const issue of referenceIssues(c)) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
  });

type Loose = Record<string, unknown>;
const isObject = (v: unknown): v is Loose => typeof v === 'object' && v !== null && !Array.isArray(v);
const items = (v: unknown): Loose[] => (Array.isArray(v) ? v.map((x) => (isObject(x) ? x : {})) : []);
const nameOf = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * Checks across the config: duplicate names, ports used twice, routes naming unknown clusters. It reads the data
 * loosely, so it also runs on a file that failed the schema: a type error elsewhere must not hide these ("every
 * error at once").
 */
export function referenceIssues(config: unknown): Array<{ path: (string | number)[]; message: string }> {
  const out: Array<{ path: (string | number)[]; message: string }> = [];
  if (!isObject(config)) return out;
  const clusters = new Set<string>();
  items(config.clusters).forEach((cl, i) => {
    const name = nameOf(cl.name);
    if (name === undefined) return;
    if (clusters.has(name)) out.push({ path: ['clusters', i, 'name'], message: `duplicate cluster "${name}"` });
    clusters.add(name);
  });
  const names = new Set<string>();
  const bound: Array<{ address: string; port: number; name: string }> = [];
  const admin = isObject(config.admin) ? config.admin : {};
  if (admin.enabled !== false) {
    const adminPort = admin.port === undefined ? 15000 : admin.port;
    if (typeof adminPort === 'number' && adminPort !== 0) bound.push({ address: nameOf(admin.address) ?? '127.0.0.1', port: adminPort, name: 'the admin server (admin.port)' });
  }
  items(config.listeners).forEach((l, li) => {
    const name = nameOf(l.name);
    if (name !== undefined) {
      if (names.has(name)) out.push({ path: ['listeners', li, 'name'], message: `duplicate listener "${name}"` });
      names.add(name);
    }
    if (typeof l.port === 'number' && l.port !== 0) {
      const address = nameOf(l.address) ?? '127.0.0.1';
      const other = bound.find((b) => b.port === l.port && addressesOverlap(b.address, address));
      if (other) {
        out.push({ path: ['listeners', li, 'port'], message: `${address}:${l.port} is already used by ${other.name}; two servers cannot listen on one address and port` });
      }
      bound.push({ address, port: l.port, name: `listener "${name ?? li}"` });
    }
    const routeNames = new Set<string>();
    const listenerFilters = new Set(items(l.filters).map((f) => nameOf(f.type)));
    items(l.routes).forEach((r, ri) => {
      // An override of a filter the listener does not run would silently do nothing.
      if (isObject(r.filter_overrides)) {
        for (const type of Object.keys(r.filter_overrides)) {
          if (!listenerFilters.has(type)) out.push({ path: ['listeners', li, 'routes', ri, 'filter_overrides', type], message: `listener "${name ?? li}" has no ${type} filter to override (add it to listeners[].filters, or use routes[].filters for a route-only filter)` });
        }
      }
      const routeName = nameOf(r.name);
      if (routeName !== undefined) {
        // Metrics and logs name routes: two with one name would merge their series.
        if (routeNames.has(routeName)) out.push({ path: ['listeners', li, 'routes', ri, 'name'], message: `duplicate route "${routeName}" in listener "${name ?? li}"` });
        routeNames.add(routeName);
      }
      const refs =
        r.cluster !== undefined
          ? [{ name: r.cluster, path: ['cluster'] }]
          : items(r.weighted_clusters).map((w, wi) => ({ name: w.cluster, path: ['weighted_clusters', wi, 'cluster'] }));
      for (const ref of refs) {
        const target = nameOf(ref.name);
        if (target !== undefined && !clusters.has(target)) {
          out.push({ path: ['listeners', li, 'routes', ri, ...ref.path], message: `unknown cluster "${target}"${suggestName(target, [...clusters])}` });
        }
      }
    });
  });
  return out;
}

/** Whether binding both addresses on one port would clash: the same address, or a wildcard that covers the other. */
function addressesOverlap(a: string, b: string): boolean {
  if (a === b) return true;
  const v6 = (x: string): boolean => x.includes(':');
  // "::" takes IPv4 too (dual stack); "0.0.0.0" takes every IPv4 address.
  if (a === '::' || b === '::' || a === '' || b === '') return true;
  if (a === '0.0.0.0') return !v6(b);
  if (b === '0.0.0.0') return !v6(a);
  return false;
}

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type ListenerConfig = Config['listeners'][number];
export type RouteConfig = ListenerConfig['routes'][number];
export type ClusterConfig = Config['clusters'][number];
export type ListenerTlsConfig = z.output<typeof listenerTls>;
export type ClusterTlsConfig = z.output<typeof clusterTls>;
export type ValueMatchConfig = z.output<typeof valueMatch>;
export type RouteMatchConfig = z.output<typeof routeMatch>;
export type HeaderMutationConfig = z.output<typeof headerMutation>;
export type LoadBalancerConfig = z.output<typeof loadBalancer>;
export type RetryPolicyConfig = z.output<typeof retryPolicy>;
export type AdaptiveConcurrencyConfig = z.output<typeof adaptiveConcurrencyPolicy>;
export type HedgeConfig = z.output<typeof hedgePolicy>;
export type FaultConfig = z.output<typeof faultPolicy>;
export type RetryBudgetConfigInput = z.output<typeof retryBudget>;
export type CircuitBreakersConfig = z.output<typeof circuitBreakers>;
