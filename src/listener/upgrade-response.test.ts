// Unit test: which 101 answers count as switching to the protocol the client asked for.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { switchedToAsked } from './upgrade-response.js';

describe('switchedToAsked', () => {
  it('matches the asked token case-insensitively, or one of several asked', () => {
    assert.equal(switchedToAsked('websocket', 'WebSocket'), true);
    assert.equal(switchedToAsked('foo/2, websocket', ' websocket '), true);
  });
  it('refuses a missing, empty or different Upgrade', () => {
    assert.equal(switchedToAsked('websocket', undefined), false);
    assert.equal(switchedToAsked('websocket', ''), false);
    assert.equal(switchedToAsked('websocket', 'h2c'), false);
    assert.equal(switchedToAsked('websocket', 'websocket, h2c'), false);
  });
});
