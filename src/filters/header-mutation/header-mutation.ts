// Request and response header add/set/remove, built once per route.
import type { HeaderMutationConfig } from '../../config/schema.js';
import type { HeaderList } from '../../core/headers.js';
import type { Layer } from '../../core/service.js';
import type { FilterFactory } from '../filter.js';
import type { HeaderMutationFilterConfig } from './schema.js';

export type HeaderEdit = (headers: HeaderList) => void;

export function compileHeaderMutation(m: HeaderMutationConfig | undefined): HeaderEdit | undefined {
  if (!m) return undefined;
  const remove = m.remove ?? [];
  const set = Object.entries(m.set ?? {});
  const add = Object.entries(m.add ?? {});
  if (!remove.length && !set.length && !add.length) return undefined;
  return (h) => {
    for (const name of remove) h.remove(name);
    for (const [k, v] of set) h.set(k, v);
    for (const [k, v] of add) h.add(k, v);
  };
}

export function headerMutationLayer(request: HeaderMutationConfig | undefined, response: HeaderMutationConfig | undefined): Layer {
  const onRequest = compileHeaderMutation(request);
  const onResponse = compileHeaderMutation(response);
  if (!onRequest && !onResponse) return (next) => next;
  return (next) => async (req) => {
    if (onRequest) onRequest(req.headers);
    const res = await next(req);
    if (onResponse) onResponse(res.headers);
    return res;
  };
}

/** The registered filter (`type: header_mutation`); a route's request_headers / response_headers keys build the same one. */
export const headerMutationFilter: FilterFactory<HeaderMutationFilterConfig> = {
  type: 'header_mutation',
  create: (cfg) => headerMutationLayer(cfg.request, cfg.response),
};
