// gRPC status to HTTP (the mapping of google/rpc/code.proto, as Envoy and grpc-gateway use) and the JSON error body.

/** HTTP status by gRPC code (0 OK ... 16 UNAUTHENTICATED). */
const HTTP_BY_CODE: readonly number[] = [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401];

export const CODE_NAMES: readonly string[] = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];

export const httpStatusOf = (code: number): number => HTTP_BY_CODE[code] ?? 500;

/** The gRPC code a sidecar-made answer of this HTTP status stands for (for the JSON error body). */
export function codeOfHttp(status: number): number {
  switch (status) {
    case 400: return 3;
    case 401: return 16;
    case 403: return 7;
    case 404: return 5;
    case 409: return 10;
    case 413: case 429: return 8;
    case 499: return 1;
    case 501: return 12;
    case 502: case 503: return 14;
    case 504: return 4;
    default: return status < 400 ? 0 : 2;
  }
}

/** grpc-message is percent-encoded on the wire. */
export function decodeGrpcMessage(raw: string | undefined): string {
  if (raw === undefined) return '';
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
