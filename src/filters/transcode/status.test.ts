// gRPC status codes to HTTP statuses (and back, for the sidecar's own JSON answers).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CODE_NAMES, codeOfHttp, decodeGrpcMessage, httpStatusOf } from './status.js';

describe('gRPC status mapping', () => {
  it('maps every code as google/rpc/code.proto says', () => {
    const expected: Record<string, number> = {
      OK: 200, CANCELLED: 499, UNKNOWN: 500, INVALID_ARGUMENT: 400, DEADLINE_EXCEEDED: 504, NOT_FOUND: 404, ALREADY_EXISTS: 409,
      PERMISSION_DENIED: 403, RESOURCE_EXHAUSTED: 429, FAILED_PRECONDITION: 400, ABORTED: 409, OUT_OF_RANGE: 400,
      UNIMPLEMENTED: 501, INTERNAL: 500, UNAVAILABLE: 503, DATA_LOSS: 500, UNAUTHENTICATED: 401,
    };
    CODE_NAMES.forEach((name, code) => assert.equal(httpStatusOf(code), expected[name], name));
    assert.equal(httpStatusOf(99), 500);
  });

  it('the sidecar answers carry the code their status stands for', () => {
    assert.equal(codeOfHttp(404), 5);
    assert.equal(codeOfHttp(400), 3);
    assert.equal(codeOfHttp(413), 8);
    assert.equal(codeOfHttp(503), 14);
    assert.equal(codeOfHttp(504), 4);
    assert.equal(codeOfHttp(508), 2);
  });

  it('grpc-message is percent-decoded, and kept as it is when it is not valid encoding', () => {
    assert.equal(decodeGrpcMessage('no%20book'), 'no book');
    assert.equal(decodeGrpcMessage('100%'), '100%');
    assert.equal(decodeGrpcMessage(undefined), '');
  });
});
