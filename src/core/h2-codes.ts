// RFC 9113 error code names (section 7), for causes, logs and metric labels: "ENHANCE_YOUR_CALM", not "11".
const NAMES: readonly string[] = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
];

/** The code's RFC name; unknown codes (RFC 9113 7: treated as INTERNAL_ERROR) as "UNKNOWN_0x..". */
export function h2CodeName(code: number): string {
  return NAMES[code] ?? `UNKNOWN_0x${code.toString(16)}`;
}
