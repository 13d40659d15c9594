// The fault filter's config schema.
import { z } from 'zod';
import { duration, percent } from '../../config/primitives.js';
import { defineSpec } from '../filter.js';

export const faultPolicy = z
  .strictObject({
    delay: z
      .strictObject({ duration, percent: percent.default(100) })
      .optional()
      .meta({ description: 'Delay this share of requests before forwarding them.' }),
    abort: z
      .strictObject({
        status: z.number().int().min(200).max(599).meta({ description: 'Status to answer with.' }),
        percent: percent.default(100),
      })
      .optional()
      .meta({ description: 'Answer this share of requests with status and flag FI, without forwarding them.' }),
    header_control: z
      .boolean()
      .default(false)
      .meta({ description: 'Let x-sidecar-fault-delay-ms and x-sidecar-fault-abort request headers ask for a fault (testing only).' }),
  })
  .refine((f) => f.delay !== undefined || f.abort !== undefined || f.header_control, {
    message: 'fault needs delay, abort or header_control',
  });


export const faultSpec = defineSpec({
  type: 'fault',
  description: 'Inject delays and aborts (flag FI) for resilience testing.',
  schema: faultPolicy,
  defaults: { header_control: true },
});
