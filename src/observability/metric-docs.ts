// docs/metrics.md keeps its prose by hand; the series table between the markers is generated from the catalogue
// (node dist/scripts/gen-docs.js), and a test fails when it is out of date.
import { SidecarMetrics } from './catalogue.js';
import { metricsTable } from './metric-labels.js';

export const BEGIN = '<!-- series table: generated from src/observability/catalogue.ts by gen-docs; do not edit -->';
export const END = '<!-- end of the generated series table -->';

/** The catalogue's families, as a fresh sidecar registers them. */
export const allFamilies = () => new SidecarMetrics().registry.describe();

/** `doc` with its generated table brought up to date. */
export function metricsDoc(doc: string): string {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) throw new Error(`docs/metrics.md needs the markers ${BEGIN} and ${END}`);
  return `${doc.slice(0, a + BEGIN.length)}\n\n${metricsTable(allFamilies())}\n${doc.slice(b)}`;
}
