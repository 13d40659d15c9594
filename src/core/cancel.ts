// A lightweight cancellation token for the hot path: AbortSignal's EventTarget costs microseconds per request, this costs an array push.
export type CancelListener = (reason: Error) => void;

export class Cancellation {
  #reason: Error | undefined;
  #listeners: CancelListener[] | undefined;

  get aborted(): boolean {
    return this.#reason !== undefined;
  }

  get reason(): Error | undefined {
    return this.#reason;
  }

  /** Runs `fn` once on abort (immediately if already aborted). Returns a function that unsubscribes. */
  onAbort(fn: CancelListener): () => void {
    if (this.#reason) {
      fn(this.#reason);
      return noop;
    }
    (this.#listeners ??= []).push(fn);
    return () => {
      const list = this.#listeners;
      if (!list) return;
      const i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
    };
  }

  abort(reason: Error): void {
    if (this.#reason) return;
    this.#reason = reason;
    const list = this.#listeners;
    this.#listeners = undefined;
    if (list) for (const fn of list) fn(reason);
  }

  /** A child that aborts with this token but can also be aborted alone (one attempt of a request). */
  child(): Cancellation {
    const c = new Cancellation();
    const off = this.onAbort((r) => c.abort(r));
    c.onAbort(off);
    return c;
  }
}

const noop = (): void => {};
