// Per-method gRPC series: labels from the path, code names, and the cap per route with an `other` bucket.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GrpcRouteSeries, grpcCodeName, grpcMethodOf } from './grpc-metrics.js';
import { MetricsRegistry } from './metrics.js';

const setup = (cap?: number) => {
  const registry = new MetricsRegistry();
  const requests = registry.counter('sidecar_grpc_requests_total', 'x');
  const durations = registry.histogram('sidecar_grpc_request_duration_seconds', 'x');
  return { registry, series: new GrpcRouteSeries('in', 'grpc', requests, durations, cap) };
};

describe('gRPC metrics', () => {
  it('parses /package.Service/Method and nothing else', () => {
    assert.deepEqual(grpcMethodOf('/pkg.v1.Echo/Unary'), ['pkg.v1.Echo', 'Unary']);
    assert.deepEqual(grpcMethodOf('/Echo/Unary?x=1'), ['Echo', 'Unary']);
    for (const bad of ['/', '/Echo', '/Echo/', '//Unary', '/a/b/c', 'Echo/Unary']) assert.equal(grpcMethodOf(bad), undefined, bad);
  });

  it('names codes as gRPC does, UNKNOWN outside 0-16', () => {
    assert.equal(grpcCodeName(0), 'OK');
    assert.equal(grpcCodeName(14), 'UNAVAILABLE');
    assert.equal(grpcCodeName(16), 'UNAUTHENTICATED');
    assert.equal(grpcCodeName(17), 'UNKNOWN');
    assert.equal(grpcCodeName(-1), 'UNKNOWN');
  });

  it('counts by service, method and code, and times by method', () => {
    const { registry, series } = setup();
    series.record('/pkg.Echo/Unary', 0, 0.002);
    series.record('/pkg.Echo/Unary', 0, 0.003);
    series.record('/pkg.Echo/Unary', 14, 0.001);
    series.record('/pkg.Echo/Unary', 99, 0.001);
    const text = registry.render();
    assert.match(text, /sidecar_grpc_requests_total\{listener="in",route="grpc",grpc_service="pkg.Echo",grpc_method="Unary",grpc_code="OK"\} 2/);
    assert.match(text, /grpc_code="UNAVAILABLE"\} 1/);
    assert.match(text, /grpc_code="UNKNOWN"\} 1/);
    assert.match(text, /sidecar_grpc_request_duration_seconds_count\{listener="in",route="grpc",grpc_service="pkg.Echo",grpc_method="Unary"\} 4/);
  });

  it('past the cap, new methods and codes count as other/other; malformed paths too', () => {
    const { registry, series } = setup(3);
    for (let i = 0; i < 10; i++) series.record(`/pkg.Echo/M${i}`, 0, 0.001);
    series.record('/pkg.Echo/M0', 5, 0.001);
    series.record('/not-grpc', 0, 0.001);
    series.record('/pkg.Echo/M1', 0, 0.001);
    assert.equal(series.size, 3);
    const text = registry.render();
    assert.match(text, /grpc_method="M1",grpc_code="OK"\} 2/);
    assert.doesNotMatch(text, /grpc_method="M3"/);
    assert.match(text, /grpc_service="other",grpc_method="other",grpc_code="OK"\} 8/);
    assert.match(text, /grpc_service="other",grpc_method="other",grpc_code="NOT_FOUND"\} 1/);
  });
});
