// The one local-answer renderer: text for plain clients, trailers-only gRPC answers with mapped codes for gRPC clients.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { answerStyle, grpcPercentEncode, grpcStatus, GRPC, http1Bytes, renderLocal } from './local-answer.js';

describe('local answers', () => {
  it('text: status line words, cause and flag in body and headers', () => {
    const res = renderLocal({ status: 503, flag: 'UH', cause: 'no healthy endpoint in cluster app', withMeaning: true, requestId: 'r1' });
    assert.equal(res.status, 503);
    assert.equal(String(res.body), '503 Service Unavailable: no healthy endpoint in cluster app [UH: no healthy upstream endpoint in the cluster]\n');
    assert.equal(res.headers.get('x-sidecar-flag'), 'UH');
    assert.equal(res.headers.get('x-request-id'), 'r1');
    assert.equal(res.headers.get('content-length'), String((res.body as Buffer).length));
  });

  it('gRPC clients get HTTP 200, trailers-only, with the mapped grpc-status and the cause in grpc-message', () => {
    assert.equal(answerStyle('application/grpc+proto'), 'grpc');
    assert.equal(answerStyle('application/json'), 'text');
    assert.equal(answerStyle(undefined), 'text');
    const res = renderLocal({ status: 504, flag: 'UT', cause: 'route timeout 5ms: 100% gone', withMeaning: true }, 'grpc');
    assert.equal(res.status, 200);
    assert.equal(res.body, null);
    assert.equal(res.headers.get('content-type'), 'application/grpc');
    assert.equal(res.headers.get('grpc-status'), String(GRPC.DEADLINE_EXCEEDED));
    assert.equal(res.headers.get('grpc-message'), 'route timeout 5ms: 100%25 gone [UT: upstream request timeout]');
    assert.equal(decodeURIComponent(res.headers.get('grpc-message')!), 'route timeout 5ms: 100% gone [UT: upstream request timeout]');
    assert.equal(res.headers.get('x-sidecar-flag'), 'UT');
  });

  it('grpc-message is percent-encoded as gRPC says: UTF-8, % and non-printable bytes only', () => {
    assert.equal(grpcPercentEncode('plain words: a/b?c=d'), 'plain words: a/b?c=d');
    assert.equal(grpcPercentEncode('50% ü\n'), '50%25 %C3%BC%0A');
    assert.equal(decodeURIComponent(grpcPercentEncode('見つかりません ✓ 100%')), '見つかりません ✓ 100%');
  });

  it('maps flags to gRPC codes', () => {
    for (const f of ['UF', 'UH', 'UO', 'LS'] as const) assert.equal(grpcStatus(f, 503), 14);
    assert.equal(grpcStatus('UT', 504), 4);
    assert.equal(grpcStatus('UQ', 504), 4);
    assert.equal(grpcStatus('NR', 404), 12);
    assert.equal(grpcStatus('FP', 403), 7);
    assert.equal(grpcStatus('TL', 413), 8);
    assert.equal(grpcStatus('DPE', 400), 3);
    assert.equal(grpcStatus('FI', 401), 16);
  });

  it('serialises to HTTP/1.1 bytes with the body intact (UTF-8 causes too)', () => {
    const bytes = http1Bytes(renderLocal({ status: 400, flag: 'DPE', cause: 'bad ü', withMeaning: false, close: true }));
    const text = bytes.toString('utf8');
    assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(text, /\r\nconnection: close\r\n/);
    assert.ok(text.endsWith('\r\n\r\n400 Bad Request: bad ü [DPE]\n'));
  });
});
