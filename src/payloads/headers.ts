// The headers sidecars exchange about the hop's payloads. Every one is removed before an app sees a request or an
// answer: they describe one hop only, as x-sidecar-hop does.

/** Request: the schema fingerprint of the sender's protobuf_bodies (it takes a protobuf answer of that schema). */
export const ACCEPT_PB = 'x-sidecar-accept-pb';
/** On a body in protobuf: the fingerprint it was encoded with; on an answer: the fingerprint the far end knows. */
export const PB_SCHEMA = 'x-sidecar-pb';
/** Request: the encodings the sender decodes; answer: the ones the far end decodes (so requests may be compressed). */
export const ACCEPT_ENCODING = 'x-sidecar-accept-encoding';
/** On a body the sidecar compressed for the hop (never an app's own content-encoding). */
export const HOP_ENCODING = 'x-sidecar-encoding';

export const PB_MEDIA = 'application/x-protobuf';
export const pbContentType = (fullName: string): string => `${PB_MEDIA}; messageType=${fullName.replace(/^\./, '')}`;
/** The messageType parameter of a protobuf content type, or undefined when it is none. */
export function pbMessageType(ct: string | undefined): string | undefined {
  if (ct === undefined || !ct.toLowerCase().startsWith(PB_MEDIA)) return undefined;
  return /;\s*messagetype="?([A-Za-z0-9_.]+)"?/i.exec(ct)?.[1] ?? '';
}
