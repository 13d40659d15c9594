// Binds an upstream HTTP/2 pool's session events to the catalogue's series (labels looked up per event: events are rare).
import type { H2Observer } from '../upstream/h2-observer.js';
import type { SidecarMetrics } from './catalogue.js';

export function h2Observer(metrics: SidecarMetrics, cluster: string): H2Observer {
  return {
    sessions: (endpoint, delta) => metrics.upstreamH2Sessions.get({ cluster, endpoint }).inc(delta),
    sessionClosed: (streams) => metrics.upstreamH2StreamsPerSession.get().observe(streams),
    goaway: (direction, code) => metrics.h2Goaways.get({ side: 'upstream', direction, code }).inc(),
    reset: (direction, code) => metrics.h2Resets.get({ side: 'upstream', direction, code }).inc(),
  };
}
