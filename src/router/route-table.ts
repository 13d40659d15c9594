// A listener's route table: first match wins. Pure: takes a MatchInput, returns the compiled route.
import { compileRouteMatch, type MatchInput, type Matcher } from './matchers.js';

export class RouteTable<R> {
  readonly #entries: ReadonlyArray<{ matcher: Matcher; route: R }>;

  constructor(entries: ReadonlyArray<{ match: Parameters<typeof compileRouteMatch>[0]; route: R }>) {
    this.#entries = entries.map((e) => ({ matcher: compileRouteMatch(e.match), route: e.route }));
  }

  match(input: MatchInput): R | undefined {
    for (const e of this.#entries) if (e.matcher(input)) return e.route;
    return undefined;
  }
}

/** Splits an origin-form target into path and query. */
export function splitPath(target: string): { pathname: string; query: string } {
  const q = target.indexOf('?');
  return q < 0 ? { pathname: target, query: '' } : { pathname: target.slice(0, q), query: target.slice(q + 1) };
}
