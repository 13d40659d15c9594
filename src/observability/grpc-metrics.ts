// Per-method gRPC metrics: sidecar_grpc_requests_total and sidecar_grpc_request_duration_seconds, with the label sets
// of each (listener, route) capped so that a client inventing method names cannot grow the registry without end.
import type { Counter, Histogram, Labels } from './metrics.js';

/** Distinct (service, method, code) label sets kept per listener and route; later ones are counted as `other`. */
export const GRPC_SERIES_PER_ROUTE = 1000;

/** gRPC status code names (grpc/doc/statuscodes.md), by code. */
export const GRPC_CODE_NAMES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

/** A code's label: its name, UNKNOWN for anything outside 0-16 (a bounded label whatever the server sends). */
export const grpcCodeName = (code: number): string => GRPC_CODE_NAMES[code] ?? 'UNKNOWN';

/** `/package.Service/Method` -> ['package.Service', 'Method']; anything else is not a gRPC method path. */
export function grpcMethodOf(path: string): [string, string] | undefined {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  const slash = p.indexOf('/', 1);
  if (p.charCodeAt(0) !== 47 || slash <= 1 || slash === p.length - 1 || p.indexOf('/', slash + 1) >= 0) return undefined;
  return [p.slice(1, slash), p.slice(slash + 1)];
}

interface Family<M> {
  get(labels: Labels): M;
}

interface MethodSeries {
  readonly labels: Labels;
  readonly duration: Histogram;
  /** By code (0-16; UNKNOWN's slot for anything else). */
  readonly codes: Array<Counter | undefined>;
}

/** One listener and route's gRPC series. */
export class GrpcRouteSeries {
  readonly #methods = new Map<string, MethodSeries>();
  #sets = 0;
  #other: MethodSeries | undefined;

  constructor(
    private readonly listener: string,
    private readonly route: string,
    private readonly requests: Family<Counter>,
    private readonly durations: Family<Histogram>,
    private readonly cap = GRPC_SERIES_PER_ROUTE,
  ) {}

  /** Label sets in use, `other` excluded. */
  get size(): number {
    return this.#sets;
  }

  record(path: string, code: number, seconds: number): void {
    const slot = code >= 0 && code < GRPC_CODE_NAMES.length ? code : 2;
    let m = this.#methods.get(path);
    if (m === undefined) {
      const parsed = this.#sets < this.cap ? grpcMethodOf(path) : undefined;
      if (parsed === undefined) m = this.#otherSeries();
      else {
        m = this.#series(parsed[0], parsed[1]);
        this.#methods.set(path, m);
      }
    }
    let counter = m.codes[slot];
    if (counter === undefined) {
      if (m !== this.#other && this.#sets >= this.cap) m = this.#otherSeries();
      counter = m.codes[slot];
      if (counter === undefined) {
        counter = m.codes[slot] = this.requests.get({ ...m.labels, grpc_code: GRPC_CODE_NAMES[slot]! });
        if (m !== this.#other) this.#sets++;
      }
    }
    counter.inc();
    m.duration.observe(seconds);
  }

  #series(service: string, method: string): MethodSeries {
    const labels = { listener: this.listener, route: this.route, grpc_service: service, grpc_method: method };
    return { labels, duration: this.durations.get(labels), codes: [] };
  }

  #otherSeries(): MethodSeries {
    return (this.#other ??= this.#series('other', 'other'));
  }
}
