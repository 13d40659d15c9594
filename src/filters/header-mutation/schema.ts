// The header-mutation filter's config schema.
import { z } from 'zod';
import { headerName, headerValue } from '../../config/primitives.js';

export const headerMutation = z.strictObject({
  add: z.record(headerName, headerValue).optional().meta({ description: 'Headers appended (existing values kept).' }),
  set: z.record(headerName, headerValue).optional().meta({ description: 'Headers replaced.' }),
  remove: z.array(headerName).optional(),
});

