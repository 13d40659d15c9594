// A cluster's endpoints as an address-keyed, versioned set: a discovery update is diffed into adds, removals and
// weight changes, and the (pure) balancer is rebuilt for each new version; picks always see the current version.
import { createBalancer, type BalancedEndpoint, type BalancerOptions, type BalancerPolicy, type LoadBalancer, type PickContext } from '../balancers/index.js';
import type { DiscoveredEndpoint } from '../discovery/source.js';

/** An endpoint the set can re-weight in place (its identity, pool and state stay). */
export interface SetMember extends BalancedEndpoint {
  weight: number;
  /** The locality its source gave it (changed in place, as the weight). */
  zone?: string | undefined;
  /** Priority level its source gave it (lower is preferred; absent 0; changed in place, as the weight). */
  priority?: number;
}

/** One priority level of a set: its members and a balancer over them. */
export interface PriorityLevel<E extends SetMember> {
  readonly priority: number;
  readonly members: readonly E[];
  readonly balancer: LoadBalancer<E>;
}

export interface EndpointSetOptions {
  /** With a local zone, a second balancer over the members in that zone (locality-aware picks). */
  readonly localZone?: string | undefined;
}

export interface EndpointSetHooks<E extends SetMember> {
  /** Builds the member for a new address (acquires its pool and state). */
  add(d: DiscoveredEndpoint): E;
  /** A member left the set: no new picks from now; it drains (in-flight requests finish, then its pool closes). */
  remove(e: E): void;
}

export interface SetChange {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly reweighted: readonly string[];
}

export class EndpointSet<E extends SetMember> {
  /** Bumped on every change that reached the balancer. */
  version = 0;
  #list: readonly E[] = [];
  readonly #byAddress = new Map<string, E>();
  #balancer: LoadBalancer<E>;
  /** Over the local zone's members; undefined without a local zone. */
  #localBalancer: LoadBalancer<E> | undefined;
  #localCount = 0;
  /** With more than one priority among the members: the levels, best first; else undefined (no cost per pick). */
  #levels: readonly PriorityLevel<E>[] | undefined;
  readonly #localZone: string | undefined;
  readonly #policy: BalancerPolicy;
  readonly #opts: BalancerOptions;
  readonly #hooks: EndpointSetHooks<E>;

  constructor(policy: BalancerPolicy, opts: BalancerOptions, hooks: EndpointSetHooks<E>, setOpts: EndpointSetOptions = {}) {
    this.#localZone = setOpts.localZone;
    this.#policy = policy;
    this.#opts = opts;
    this.#hooks = hooks;
    this.#balancer = createBalancer(policy, [], opts);
  }

  /** The current version's endpoints (a new array on every change, so a reader's copy never shifts under it). */
  get list(): readonly E[] {
    return this.#list;
  }

  get size(): number {
    return this.#list.length;
  }

  get(address: string): E | undefined {
    return this.#byAddress.get(address);
  }

  /**
   * `level`: pick within that priority level (an index into `levels`; a retry whose `avoid` is the level's only
   * available member goes to the next level); else `local`: pick among the local zone's members (all members when
   * the set has none there).
   */
  pick(ctx: PickContext, local = false, level = -1): E | undefined {
    const levels = this.#levels;
    if (level >= 0 && levels !== undefined && level < levels.length) {
      const first = levels[level]!.balancer.pick(ctx);
      const avoid = ctx.avoid;
      if (avoid === undefined || first === undefined || first.address !== avoid.address) return first;
      // The level's only available endpoint is the one the previous attempt failed on: the retry tries the next level.
      for (let i = level + 1; i < levels.length; i++) {
        const next = levels[i]!.balancer.pick(ctx);
        if (next !== undefined && next.address !== avoid.address) return next;
      }
      return first;
    }
    if (local && this.#localBalancer !== undefined && this.#localCount > 0) return this.#localBalancer.pick(ctx);
    return this.#balancer.pick(ctx);
  }

  /** The priority levels, best (lowest number) first, when members have more than one priority; else undefined. */
  get levels(): readonly PriorityLevel<E>[] | undefined {
    return this.#levels;
  }

  /** How many members are in the local zone. */
  get localCount(): number {
    return this.#localCount;
  }

  /** Whether the member is in the set's local zone. */
  isLocal(e: E): boolean {
    return this.#localZone !== undefined && e.zone === this.#localZone;
  }

  /** Makes the set equal to `next` (first entry wins on a repeated address); returns what changed. */
  replace(next: readonly DiscoveredEndpoint[]): SetChange {
    const wanted = new Map<string, DiscoveredEndpoint>();
    for (const d of next) if (!wanted.has(d.address)) wanted.set(d.address, d);
    const added: string[] = [];
    const removed: string[] = [];
    const reweighted: string[] = [];
    const gone: E[] = [];
    for (const [address, e] of this.#byAddress) {
      if (!wanted.has(address)) {
        this.#byAddress.delete(address);
        gone.push(e);
        removed.push(address);
      }
    }
    const list: E[] = [];
    for (const [address, d] of wanted) {
      let e = this.#byAddress.get(address);
      if (e === undefined) {
        e = this.#hooks.add(d);
        this.#byAddress.set(address, e);
        added.push(address);
      } else if (e.weight !== d.weight || e.zone !== d.zone || (e.priority ?? 0) !== (d.priority ?? 0)) {
        e.weight = d.weight;
        e.zone = d.zone;
        e.priority = d.priority ?? 0;
        reweighted.push(address);
      }
      list.push(e);
    }
    if (added.length + removed.length + reweighted.length > 0 || this.version === 0) {
      // Swap the list and balancer first, then drain the removed: a pick from now on never sees them.
      this.#list = list;
      this.#balancer = createBalancer(this.#policy, list, this.#opts);
      if (this.#localZone !== undefined) {
        const local = list.filter((e) => e.zone === this.#localZone);
        this.#localCount = local.length;
        this.#localBalancer = createBalancer(this.#policy, local, this.#opts);
      }
      this.#levels = levelsOf(list, (members) => createBalancer(this.#policy, members, this.#opts));
      this.version++;
    }
    for (const e of gone) this.#hooks.remove(e);
    return { added, removed, reweighted };
  }

  /** Removes every member (the cluster is going away). */
  clear(): void {
    this.replace([]);
  }
}

/** Groups members by priority, best first; undefined when they all share one (the common case: one balancer). */
function levelsOf<E extends SetMember>(list: readonly E[], balancer: (members: readonly E[]) => LoadBalancer<E>): PriorityLevel<E>[] | undefined {
  const priorities = [...new Set(list.map((e) => e.priority ?? 0))].sort((a, b) => a - b);
  if (priorities.length < 2) return undefined;
  return priorities.map((priority) => {
    const members = list.filter((e) => (e.priority ?? 0) === priority);
    return { priority, members, balancer: balancer(members) };
  });
}
