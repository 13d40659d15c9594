// The discovery, register and config-store parts of the schema, and composing a store document over the file.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { composeConfig, relabel } from './compose.js';
import { ConfigError } from './errors.js';
import { checkConfig } from './load.js';
import { cluster } from './schema.js';

const issues = (text: string): string[] => {
  try {
    checkConfig(text, 'x.yaml');
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => `${i.line} ${i.path}: ${i.message}`);
    throw err;
  }
};

describe('discovery config', () => {
  it('takes exactly one source; dns A needs a port; defaults are filled in', () => {
    assert.match(issues('clusters:\n  - name: a\n    discovery: { empty_grace: 1s }\n').join(), /one of file, dns, etcd/);
    assert.match(issues('clusters:\n  - name: a\n    discovery: { file: { path: x }, dns: { name: a.test, port: 80 } }\n').join(), /not file and dns/);
    assert.match(issues('clusters:\n  - name: a\n    discovery:\n      dns: { name: a.test }\n').join(), /4 clusters\[0\]\.discovery\.dns\.port: dns type A needs port/);
    const c = cluster.parse({ name: 'a', discovery: { etcd: { endpoints: ['http://127.0.0.1:2379'], service: 's' } } });
    assert.equal(c.discovery?.etcd?.prefix, '/sidecar/services/');
    assert.equal(c.discovery?.empty_grace, 30_000);
    assert.equal(cluster.parse({ name: 'a', discovery: { dns: { name: '_x._tcp.a', type: 'SRV' }, empty_grace: 'never' } }).discovery?.empty_grace, 'never');
  });

  it('register and config_sync check their fields', () => {
    assert.match(issues('register: { endpoints: ["http://127.0.0.1:2379"], service: s, address: "nope", ttl: 1s }\n').join('\n'), /register\.address[\s\S]*ttl must be at least 2s/);
    assert.match(issues('config_sync: { endpoints: ["http://127.0.0.1:2379"], directory: /tmp/x, files: [{ key: /k, path: ../escape }] }\n').join(), /a path inside directory/);
  });
});

describe('composing a store document over the bootstrap file', () => {
  const file = 'admin: { port: 0 }\nconfig_source: { etcd: { endpoints: ["http://127.0.0.1:1"], key: /k } }\nclusters: []\n';

  it("the store's keys replace the file's; its lines stay its own", () => {
    const store = 'clusters:\n  - name: web\n    endpoints: ["bad"]\n';
    const composed = composeConfig(file, store, 'etcd:/k');
    assert.equal(composed.storeLines, 3);
    assert.ok(composed.text.startsWith(store));
    assert.match(composed.text, /admin:/);
    assert.doesNotMatch(composed.text.slice(store.length), /clusters/);
    try {
      checkConfig(composed.text, 'etcd:/k');
      assert.fail('invalid');
    } catch (err) {
      const [i] = relabel((err as ConfigError).issues, composed.storeLines, 'sidecar.yaml');
      assert.equal(`${i!.file}:${i!.line}`, 'etcd:/k:3');
    }
  });

  it('refuses file-only keys and a non-map document, naming the key and line', () => {
    assert.throws(() => composeConfig(file, 'clusters: []\nadmin: { port: 1 }\n', 'etcd:/k'), (e: ConfigError) => e.issues[0]!.line === 2 && /bootstrap file/.test(e.issues[0]!.message));
    assert.throws(() => composeConfig(file, '- a\n- b\n', 'etcd:/k'), /YAML map/);
    assert.throws(() => composeConfig(file, '', 'etcd:/k'), /empty/);
  });
});
