import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeaderList } from '../../core/headers.js';
import { forwardDeadline, formatGrpcTimeout, parseGrpcTimeout, parseTimeoutHeader } from './deadline.js';

describe('parseGrpcTimeout', () => {
  it('reads every unit', () => {
    assert.equal(parseGrpcTimeout('100m'), 100);
    assert.equal(parseGrpcTimeout('2S'), 2000);
    assert.equal(parseGrpcTimeout('500000u'), 500);
    assert.equal(parseGrpcTimeout('3M'), 180_000);
    assert.equal(parseGrpcTimeout('1H'), 3_600_000);
    assert.equal(parseGrpcTimeout('1000000n'), 1);
    assert.equal(parseGrpcTimeout('0m'), 0);
    assert.equal(parseGrpcTimeout('99999999m'), 99_999_999);
  });
  it('rejects malformed values', () => {
    for (const v of ['', 'm', '100', '100x', '1.5S', '-1m', ' 1m', '123456789m', '10 m', '1s']) assert.equal(parseGrpcTimeout(v), undefined, v);
  });
});

describe('formatGrpcTimeout', () => {
  it('uses milliseconds, rounded down, within 8 digits', () => {
    assert.equal(formatGrpcTimeout(150.9), '150m');
    assert.equal(formatGrpcTimeout(1), '1m');
    assert.equal(formatGrpcTimeout(0.5), '500u');
    assert.equal(formatGrpcTimeout(0.0005), '500n');
    assert.equal(formatGrpcTimeout(0), '0m');
    assert.equal(formatGrpcTimeout(-5), '0m');
    assert.equal(formatGrpcTimeout(99_999_999), '99999999m');
    assert.equal(formatGrpcTimeout(100_000_000), '100000S');
  });
  it('round-trips through parseGrpcTimeout', () => {
    for (const ms of [1, 42, 1000, 86_400_000]) assert.equal(parseGrpcTimeout(formatGrpcTimeout(ms)), ms);
  });
});

describe('parseTimeoutHeader', () => {
  it('reads milliseconds and durations', () => {
    assert.equal(parseTimeoutHeader('250'), 250);
    assert.equal(parseTimeoutHeader('250ms'), 250);
    assert.equal(parseTimeoutHeader('2s'), 2000);
    assert.equal(parseTimeoutHeader('1.5s'), 1500);
    assert.equal(parseTimeoutHeader('1m'), 60_000);
    assert.equal(parseTimeoutHeader(' 30 '), 30);
  });
  it('rejects malformed values', () => {
    for (const v of ['', 'ms', '-5', '5 s', 'abc', '1e3', '2S', '1,5s']) assert.equal(parseTimeoutHeader(v), undefined, v);
  });
});

describe('forwardDeadline', () => {
  it('sets x-sidecar-timeout to the whole milliseconds left', () => {
    const h = new HeaderList(['accept', '*/*', 'x-sidecar-timeout', '9999']);
    forwardDeadline(h, 1250.7, 1000);
    assert.deepEqual(h.raw, ['accept', '*/*', 'x-sidecar-timeout', '250']);
  });
  it('rewrites grpc-timeout for gRPC requests only', () => {
    const g = new HeaderList(['content-type', 'application/grpc+proto', 'grpc-timeout', '10S']);
    forwardDeadline(g, 300, 100);
    assert.equal(g.get('grpc-timeout'), '200m');
    assert.equal(g.get('x-sidecar-timeout'), '200');
    const p = new HeaderList(['content-type', 'application/json']);
    forwardDeadline(p, 300, 100);
    assert.equal(p.get('grpc-timeout'), undefined);
  });
  it('never goes negative and does nothing without a deadline', () => {
    const h = new HeaderList([]);
    forwardDeadline(h, 100, 200);
    assert.equal(h.get('x-sidecar-timeout'), '0');
    const none = new HeaderList([]);
    forwardDeadline(none, Infinity, 200);
    assert.equal(none.size, 0);
  });
});
