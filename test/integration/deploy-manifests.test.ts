// deploy/kubernetes: every manifest validates against the vendored API subset (test/k8s/models.ts), and the
// Deployment agrees with the sidecar config in the ConfigMap, parsed by the sidecar's own loader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { byKind, configMap, deployment, type Container } from '../k8s/models.js';
import { loadConfigText } from '../../src/config/load.js';

const DIR = fileURLToPath(new URL('../../../deploy/kubernetes/', import.meta.url));
const docs = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).flatMap((f) => parseAllDocuments(readFileSync(join(DIR, f), 'utf8')).map((d) => ({ file: f, value: d.toJS() as { kind: keyof typeof byKind } })));
/** The loader gives durations in milliseconds. */
const seconds = (ms: unknown): number => { assert.equal(typeof ms, 'number'); return (ms as number) / 1000; };

test('every manifest is a known kind and validates against the schema subset', () => {
  assert.ok(docs.length >= 3);
  for (const d of docs) {
    const schema = byKind[d.value.kind];
    assert.ok(schema, `${d.file}: unknown kind ${d.value.kind}`);
    const r = schema.safeParse(d.value);
    assert.ok(r.success, `${d.file}: ${r.success ? '' : JSON.stringify(r.error.issues)}`);
  }
});

test('the model rejects what the API server would (a misspelt field, a bad restartPolicy)', () => {
  const dep = deployment.parse(docs.find((d) => d.value.kind === 'Deployment')!.value);
  const bad = structuredClone(dep) as unknown as { spec: { template: { spec: { initContainers: Record<string, unknown>[] } } } };
  bad.spec.template.spec.initContainers[1]!.restartpolicy = 'Always';
  assert.equal(deployment.safeParse(bad).success, false);
  const bad2 = structuredClone(dep) as unknown as { spec: { template: { spec: { initContainers: Record<string, unknown>[] } } } };
  bad2.spec.template.spec.initContainers[1]!.restartPolicy = 'OnFailure';
  assert.equal(deployment.safeParse(bad2).success, false);
});

test('the Deployment agrees with the sidecar config: ports, probes, drain, NET_ADMIN only in the iptables init container', () => {
  const cm = configMap.parse(docs.find((d) => d.value.kind === 'ConfigMap')!.value);
  const { config } = loadConfigText(cm.data['sidecar.yaml']!, 'configmap:sidecar.yaml', {});
  const dep = deployment.parse(docs.find((d) => d.value.kind === 'Deployment')!.value);
  const pod = dep.spec.template.spec;
  const sidecar = pod.initContainers!.find((c) => c.restartPolicy === 'Always')!;
  assert.ok(sidecar, 'a native sidecar: an init container with restartPolicy: Always');
  const adminPort = config.admin.port;
  for (const p of [sidecar.startupProbe, sidecar.readinessProbe, sidecar.livenessProbe]) {
    assert.ok(p?.httpGet, 'each probe is an httpGet on the admin server');
    assert.equal(p.httpGet.port, adminPort);
    assert.ok(['/ready', '/live'].includes(p.httpGet.path));
  }
  assert.equal(sidecar.readinessProbe!.httpGet!.path, '/ready');
  assert.equal(sidecar.livenessProbe!.httpGet!.path, '/live');
  const inbound = config.listeners.find((l) => l.mode === 'reverse')!;
  const outbound = config.listeners.find((l) => l.mode === 'forward')!;
  assert.ok(sidecar.ports!.some((p) => p.containerPort === inbound.port));
  assert.ok(sidecar.ports!.some((p) => p.containerPort === adminPort));
  // The config file the container runs is where the ConfigMap is mounted.
  const cfgArg = sidecar.args![sidecar.args!.indexOf('-c') + 1]!;
  const mount = sidecar.volumeMounts!.find((m) => cfgArg.startsWith(`${m.mountPath}/`))!;
  assert.equal(pod.volumes!.find((v) => v.name === mount.name)?.configMap?.name, cm.metadata.name);
  assert.ok(cm.data[cfgArg.slice(mount.mountPath.length + 1)] !== undefined);
  // The certificate Secret is mounted.
  assert.ok(pod.volumes!.some((v) => v.secret?.secretName === 'sidecar-workload-cert'));
  // Drain: the grace period covers drain_delay + drain_timeout; preStop starts the drain on the admin port.
  const drain = seconds((config as { drain_delay: unknown }).drain_delay) + seconds((config as { drain_timeout: unknown }).drain_timeout);
  assert.ok(pod.terminationGracePeriodSeconds! >= drain, `grace ${pod.terminationGracePeriodSeconds} < ${drain}`);
  assert.match(JSON.stringify(sidecar.lifecycle?.preStop), new RegExp(`:${adminPort}/drain`));
  // iptables: its ports match the listeners, its uid is the sidecar's, NET_ADMIN only there.
  const ipt = pod.initContainers!.find((c) => c.command?.includes('iptables'))!;
  const flag = (c: Container, f: string): string => c.command![c.command!.indexOf(f) + 1]!;
  assert.equal(Number(flag(ipt, '--inbound-port')), inbound.port);
  assert.equal(Number(flag(ipt, '--outbound-port')), outbound.port);
  assert.equal(Number(flag(ipt, '--admin-port')), adminPort);
  assert.equal(Number(flag(ipt, '--proxy-uid')), sidecar.securityContext!.runAsUser);
  for (const c of [...pod.initContainers!, ...pod.containers]) {
    const netAdmin = c.securityContext?.capabilities?.add?.includes('NET_ADMIN') ?? false;
    assert.equal(netAdmin, c === ipt, `${c.name}: NET_ADMIN only in the iptables init container`);
  }
});
