// A cluster: its endpoints, its balancer, and the terminal service that sends one attempt to a picked endpoint.
import { createBalancer, hashKey, type BalancedEndpoint, type LoadBalancer } from '../balancers/index.js';
import type { ClusterConfig } from '../config/schema.js';
import { ProxyError } from '../core/errors.js';
import type { HttpService, ProxyRequest, ProxyResponse } from '../core/service.js';
import type { EndpointStats, UpstreamLease, UpstreamRegistry } from '../upstream/registry.js';
import type { Upstream } from '../upstream/upstream.js';

export class Endpoint implements BalancedEndpoint {
  readonly address: string;
  readonly weight: number;
  readonly upstream: Upstream;
  readonly stats: EndpointStats;
  readonly #lease: UpstreamLease;

  constructor(address: string, weight: number, lease: UpstreamLease) {
    this.address = address;
    this.weight = weight;
    this.#lease = lease;
    this.upstream = lease.upstream;
    this.stats = lease.stats;
  }

  get active(): number {
    return this.stats.active;
  }

  get available(): boolean {
    return true;
  }

  release(): void {
    this.#lease.release();
  }
}

export class Cluster {
  readonly name: string;
  readonly config: ClusterConfig;
  readonly endpoints: readonly Endpoint[];
  readonly #balancer: LoadBalancer<Endpoint>;
  readonly #hashOf: ((req: ProxyRequest) => number | undefined) | undefined;
  /** Sends one attempt of the request to an endpoint the balancer picks. */
  readonly service: HttpService;

  constructor(config: ClusterConfig, registry: UpstreamRegistry) {
    this.name = config.name;
    this.config = config;
    this.endpoints = config.endpoints.map((e) => {
      const address = typeof e === 'string' ? e : e.address;
      const weight = typeof e === 'string' ? 1 : e.weight;
      const lease = registry.acquire(config.protocol, {
        address,
        connectTimeout: config.connect_timeout,
        maxConnections: config.pool.max_connections,
        keepAliveTimeout: config.pool.keep_alive_timeout,
        maxRequestsPerConnection: config.pool.max_requests_per_connection,
        streamIdleTimeout: config.stream_idle_timeout,
      });
      return new Endpoint(address, weight, lease);
    });
    this.#balancer = createBalancer(config.lb.policy, this.endpoints, { ringSize: config.lb.ring_size });
    this.#hashOf = config.lb.policy === 'ring_hash' && config.lb.hash_on ? hashFunction(config.lb.hash_on) : undefined;
    this.service = (req) => this.#send(req);
  }

  pick(req: ProxyRequest): Endpoint | undefined {
    return this.#balancer.pick({ hash: this.#hashOf?.(req), avoid: undefined });
  }

  async #send(req: ProxyRequest): Promise<ProxyResponse> {
    const ep = this.pick(req);
    if (!ep) throw new ProxyError('UH', `no healthy endpoint in cluster ${this.name}`);
    const ctx = req.context;
    ctx.endpoint = ep.address;
    ctx.attempts++;
    const stats = ep.stats;
    stats.active++;
    stats.requests++;
    let res: ProxyResponse;
    try {
      res = await ep.upstream.request(req, req.cancel);
    } catch (err) {
      stats.active--;
      stats.failures++;
      throw err;
    }
    if (res.status >= 500) stats.failures++;
    if (res.body) res.body.once('close', () => stats.active--);
    else stats.active--;
    return res;
  }

  release(): void {
    for (const e of this.endpoints) e.release();
  }
}

function hashFunction(on: NonNullable<ClusterConfig['lb']['hash_on']>): (req: ProxyRequest) => number | undefined {
  if (on.header !== undefined) {
    const name = on.header;
    return (req) => {
      const v = req.headers.get(name);
      return v === undefined ? undefined : hashKey(v);
    };
  }
  if (on.cookie !== undefined) {
    const name = on.cookie;
    return (req) => {
      const v = cookieValue(req.headers.getAll('cookie'), name);
      return v === undefined ? undefined : hashKey(v);
    };
  }
  return (req) => hashKey(req.context.downstreamAddress);
}

export function cookieValue(headers: readonly string[], name: string): string | undefined {
  for (const h of headers) {
    for (const part of h.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
    }
  }
  return undefined;
}
