// Test helper for the upstream suites: UpstreamOptions with test-friendly values, each overridable.
import type { UpstreamOptions } from './upstream.js';

export const testUpstreamOptions = (address: string, over: Partial<UpstreamOptions> = {}): UpstreamOptions => ({
  address,
  connectTimeout: 2000,
  maxConnections: 4,
  keepAliveTimeout: 60_000,
  maxRequestsPerConnection: 0,
  streamIdleTimeout: 30_000,
  maxConcurrentStreams: 100,
  maxSharePerDownstream: 1,
  reclaimStalledAfter: 0,
  reclaimUploadMinRate: 0,
  h2KeepaliveInterval: 0,
  h2KeepaliveTimeout: 0,
  ...over,
});
