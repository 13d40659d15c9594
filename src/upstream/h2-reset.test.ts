// How an upstream reset after the head is described and relayed: CANCEL stays CANCEL, everything else INTERNAL_ERROR.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { describe, it } from 'node:test';
import { ProxyError } from '../core/errors.js';
import { downstreamResetCode, resetAfterHead } from './h2-reset.js';

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_PROTOCOL_ERROR } = http2.constants;

describe('h2 resets after the head', () => {
  it('is a UR failure with the response started, naming the code', () => {
    const e = resetAfterHead('10.0.0.1:80', NGHTTP2_CANCEL);
    assert.equal(e.flag, 'UR');
    assert.equal(e.outcome, 'response-started');
    assert.equal(e.code, 'stream-reset');
    assert.match(e.message, /10\.0\.0\.1:80 reset the stream after the response head \(CANCEL\)/);
  });

  it('relays CANCEL as CANCEL, anything else as INTERNAL_ERROR', () => {
    assert.equal(downstreamResetCode(resetAfterHead('a:1', NGHTTP2_CANCEL)), NGHTTP2_CANCEL);
    assert.equal(downstreamResetCode(resetAfterHead('a:1', NGHTTP2_PROTOCOL_ERROR)), NGHTTP2_INTERNAL_ERROR);
    assert.equal(downstreamResetCode(new ProxyError('UC', 'closed')), NGHTTP2_INTERNAL_ERROR);
    assert.equal(downstreamResetCode(new Error('x')), NGHTTP2_INTERNAL_ERROR);
  });
});
