// Test helpers for discovery sources: a recording sink that can wait for what a source delivers.
import type { DiscoveredEndpoint, DiscoverySink } from './source.js';

export class RecordingSink implements DiscoverySink {
  readonly updates: (readonly DiscoveredEndpoint[])[] = [];
  readonly errors: string[] = [];
  #waiters: (() => void)[] = [];

  update(endpoints: readonly DiscoveredEndpoint[]): void {
    this.updates.push(endpoints);
    this.#wake();
  }

  unavailable(reason: string): void {
    this.errors.push(reason);
    this.#wake();
  }

  /** The last set delivered, sorted by address, as "address*weight" strings (easy to compare). */
  get latest(): string[] | undefined {
    const u = this.updates.at(-1);
    return u === undefined ? undefined : u.map((e) => `${e.address}*${e.weight}`).sort();
  }

  /** Resolves once `cond` holds (checked after each delivery); rejects after timeoutMs. */
  async waitFor(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!cond()) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; last set ${JSON.stringify(this.latest)}, errors ${JSON.stringify(this.errors)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
}
