// Filter config errors in plain words at their YAML path: an unknown filter type, a bad filter config, a dangling override.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../config/load.js';

function errorsOf(yaml: string): string {
  try {
    parseConfig(yaml, 'test.yaml', {});
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.message;
  }
  assert.fail('expected a ConfigError');
}

const config = (listenerFilters: string, route: string): string => `
listeners:
  - name: in
    port: 8000
    filters: ${listenerFilters}
    routes: [{ match: { prefix: / }, cluster: app${route} }]
clusters:
  - { name: app, endpoints: ["127.0.0.1:8080"] }
`;

describe('filter config', () => {
  it('accepts listener filters, route filters and an override of a listener filter', () => {
    const loaded = parseConfig(config('[{ type: fault, config: { header_control: true } }]', ', filter_overrides: { fault: { disabled: true } }, filters: [{ type: body_limit, config: { max_bytes: 1KiB } }]'), 'test.yaml', {});
    const route = loaded.listeners[0]!.routes[0]!;
    assert.deepEqual(route.filters, [{ type: 'body_limit', disabled: false, config: { max_bytes: 1024 } }]);
    assert.deepEqual(route.filter_overrides, { fault: { disabled: true } });
  });

  it('names an override of a filter the listener does not run, at its path', () => {
    assert.match(errorsOf(config('[]', ', filter_overrides: { fault: { disabled: true } }')), /routes\[0\]\.filter_overrides\.fault: listener "in" has no fault filter to override/);
  });

  it('an unknown type and a bad filter config are errors at their path', () => {
    assert.match(errorsOf(config('[{ type: nope, config: {} }]', '')), /listeners\[0\]\.filters\[0\]/);
    assert.match(errorsOf(config('[{ type: fault, config: { abort: { status: 700 } } }]', '')), /listeners\[0\]\.filters\[0\]\.config\.abort\.status/);
  });
});
