// ProxyError: a failure the proxy answers itself, with a status, a response flag and a cause a person can read.
import { RESPONSE_FLAGS, type ResponseFlag } from './flags.js';

export class ProxyError extends Error {
  readonly flag: ResponseFlag;
  readonly status: number;
  /** The upstream endpoint involved, when there is one. */
  readonly endpoint: string | undefined;

  constructor(flag: ResponseFlag, detail: string, opts: { status?: number; endpoint?: string; cause?: unknown } = {}) {
    super(detail, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ProxyError';
    this.flag = flag;
    this.status = opts.status ?? RESPONSE_FLAGS[flag].status;
    this.endpoint = opts.endpoint;
  }
}

export const isProxyError = (e: unknown): e is ProxyError => e instanceof ProxyError;
