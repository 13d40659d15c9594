// The header-mutation filter's config schema.
import { z } from 'zod';
import { headerName, headerValue } from '../../config/primitives.js';
import { defineSpec } from '../filter.js';

export const headerMutation = z.strictObject({
  add: z.record(headerName, headerValue).optional().meta({ description: 'Headers appended (existing values kept).' }),
  set: z.record(headerName, headerValue).optional().meta({ description: 'Headers replaced.' }),
  remove: z.array(headerName).optional(),
});


export const headerMutationConfig = z.strictObject({
  request: headerMutation.optional().meta({ description: 'Edits of the request headers sent upstream.' }),
  response: headerMutation.optional().meta({ description: 'Edits of the response headers sent downstream.' }),
});
export type HeaderMutationFilterConfig = z.output<typeof headerMutationConfig>;

export const headerMutationSpec = defineSpec({
  type: 'header_mutation',
  description: 'Add, set and remove request and response headers.',
  schema: headerMutationConfig,
  defaults: {},
});
