// deploy/Dockerfile, built for real with podman from this repo (on a Node 20 base made offline, see
// test/helpers/container.ts) and run: the image runs `sidecar run` as uid 1337, proxies a request to an app in the
// same container, and its own HEALTHCHECK says healthy, then unhealthy once the sidecar drains (/ready fails).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { nodeBaseImage, requirePodman, type Podman } from '../helpers/container.js';
import { ROOT } from '../helpers/sidecar.js';
import { sleep } from '../helpers/strict-net.js';

const IMAGE = 'localhost/sidecar:container-image-test';

const CONFIG = `
admin: { address: 0.0.0.0, port: 15000 }
drain_delay: 1s
drain_timeout: 5s
listeners:
  - name: inbound
    address: 0.0.0.0
    port: 15006
    mode: reverse
    routes:
      - { name: app, match: { prefix: / }, cluster: app }
clusters:
  - { name: app, endpoints: ["127.0.0.1:8080"] }
`;

/** The app next to the sidecar (same network namespace, as in a pod), run with the image's own node. */
const APP = "require('http').createServer((q, s) => s.end('app saw ' + q.url)).listen(8080, '127.0.0.1')";

interface InitContainer { command?: string[]; securityContext?: { runAsUser?: number; capabilities?: { add?: string[] } } }
interface Pod { kind: string; spec: { template: { spec: { initContainers: InitContainer[] } } } }
interface ImageInspect { Config: { User?: string; Entrypoint?: string[]; Cmd?: string[] }; Healthcheck?: { Test?: string[] } }

describe('deploy/Dockerfile built with podman and run', { timeout: 480_000 }, () => {
  let podman: Podman;
  let container = '';
  let cfgDir = '';
  const hostPort = async (port: number): Promise<number> => {
    const out = (await podman.run(['port', container, `${port}/tcp`])).stdout.trim();
    return Number(out.slice(out.lastIndexOf(':') + 1));
  };
  const healthcheck = async (): Promise<number> => (await podman.run(['healthcheck', 'run', container], { allowFail: true, timeoutMs: 30_000 })).code;
  const healthStatus = async (): Promise<string> => (await podman.run(['inspect', container, '--format', '{{.State.Health.Status}}'])).stdout.trim();

  before(async () => {
    podman = await requirePodman();
    const base = await nodeBaseImage(podman);
    const started = Date.now();
    await podman.run(['build', '--format', 'docker', '--build-arg', `NODE_IMAGE=${base.image}`, '-f', path.join(ROOT, 'deploy/Dockerfile'), '-t', IMAGE, ROOT], { timeoutMs: 420_000 });
    const size = Number((await podman.run(['image', 'inspect', IMAGE, '--format', '{{.Size}}'])).stdout.trim());
    const baseSize = Number((await podman.run(['image', 'inspect', base.image, '--format', '{{.Size}}'])).stdout.trim());
    console.log(`# base ${base.image}: ${base.builtMs ? `built in ${(base.builtMs / 1000).toFixed(1)}s` : 'cached'}, ${(baseSize / 1e6).toFixed(0)} MB; `
      + `image built in ${((Date.now() - started) / 1000).toFixed(1)}s, ${(size / 1e6).toFixed(0)} MB (${((size - baseSize) / 1e6).toFixed(0)} MB over the base)`);
    cfgDir = fs.mkdtempSync(path.join(podman.cacheDir, 'etc-'));
    fs.writeFileSync(path.join(cfgDir, 'sidecar.yaml'), CONFIG);
    fs.chmodSync(cfgDir, 0o755);
    container = (await podman.run(['run', '-d', '-v', `${cfgDir}:/etc/sidecar:ro`, '-p', '127.0.0.1::15000', '-p', '127.0.0.1::15006', IMAGE])).stdout.trim();
  });

  after(async () => {
    if (container) await podman.run(['rm', '-f', '-t', '0', container], { allowFail: true });
    if (cfgDir) fs.rmSync(cfgDir, { recursive: true, force: true });
  });

  it('the image is the documented one: uid 1337, `sidecar run` entry point, HEALTHCHECK on /ready', async () => {
    const [img] = JSON.parse((await podman.run(['image', 'inspect', IMAGE])).stdout) as ImageInspect[];
    assert.ok(img);
    assert.equal(img.Config.User, '1337:1337');
    assert.deepEqual(img.Config.Entrypoint, ['node', '/app/bin/sidecar.js']);
    assert.deepEqual(img.Config.Cmd, ['run', '-c', '/etc/sidecar/sidecar.yaml']);
    // Kept because the build uses the docker format (OCI image configs have no HEALTHCHECK).
    assert.match(img.Healthcheck?.Test?.join(' ') ?? '', /127\.0\.0\.1:15000\/ready/);
  });

  it('the sidecar runs as uid 1337 and passes the HEALTHCHECK; /ready answers on the published admin port', async () => {
    // No systemd here to run podman's health timer: run the image's check by hand until it passes (start period).
    const end = Date.now() + 30_000;
    let code = await healthcheck();
    while (code !== 0 && Date.now() < end) { await sleep(250); code = await healthcheck(); }
    assert.equal(code, 0, `healthcheck still failing: ${(await podman.run(['logs', container], { allowFail: true })).stderr.slice(-2000)}`);
    assert.equal(await healthStatus(), 'healthy');
    const status = (await podman.run(['exec', container, 'cat', '/proc/1/status'])).stdout;
    assert.match(status, /^Uid:\s+1337\s+1337\s+1337\s+1337$/m);
    assert.match(status, /^Gid:\s+1337\s+1337\s+1337\s+1337$/m);
    const ready = await fetch(`http://127.0.0.1:${await hostPort(15000)}/ready`);
    assert.equal(ready.status, 200);
    assert.equal(await ready.text(), 'ready\n');
  });

  it('proxies a request from the published inbound port to the app in the same container', async () => {
    await podman.run(['exec', '-d', container, 'node', '-e', APP]);
    const url = `http://127.0.0.1:${await hostPort(15006)}/hello?x=1`;
    const end = Date.now() + 10_000;
    let res = await fetch(url);
    while (res.status !== 200 && Date.now() < end) { await res.arrayBuffer(); await sleep(100); res = await fetch(url); }
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'app saw /hello?x=1');
    // The access log (stdout) names the route's cluster and the app's address; it is written shortly after the reply.
    const line = /"path":"\/hello\?x=1".*"status":200.*"cluster":"app".*"upstream":"127\.0\.0\.1:8080"/;
    const logEnd = Date.now() + 5000;
    let log = (await podman.run(['logs', container])).stdout;
    while (!line.test(log) && Date.now() < logEnd) { await sleep(100); log = (await podman.run(['logs', container])).stdout; }
    assert.match(log, line);
  });

  it("the Deployment's iptables init container works in this image (root, NET_ADMIN and NET_RAW only)", async () => {
    const dep = parseAllDocuments(fs.readFileSync(path.join(ROOT, 'deploy/kubernetes/deployment.yaml'), 'utf8')).map((d) => d.toJS() as Pod).find((d) => d.kind === 'Deployment');
    const init = dep?.spec.template.spec.initContainers.find((c) => c.command?.includes('iptables'));
    assert.ok(init?.command && init.securityContext?.capabilities?.add);
    assert.ok(init.command.every((a) => /^[\w./-]+$/.test(a)), 'plain words, safe to hand to sh');
    const caps = init.securityContext.capabilities.add.flatMap((c) => ['--cap-add', c]);
    // Same network namespace for the apply and the listing: one shell in a throwaway container.
    const out = (await podman.run(['run', '--rm', '--user', String(init.securityContext.runAsUser ?? 0), '--cap-drop', 'all', ...caps, '--entrypoint', 'sh', IMAGE,
      '-c', `${init.command.join(' ')} >/dev/null && iptables -t nat -S`])).stdout;
    assert.match(out, /^-A OUTPUT -p tcp -j SIDECAR_OUTPUT$/m);
    assert.match(out, /^-A SIDECAR_OUTPUT -m owner --uid-owner 1337 -j RETURN$/m);
    assert.match(out, /^-A SIDECAR_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006$/m);
    assert.match(out, /^-A SIDECAR_REDIRECT -p tcp -j REDIRECT --to-ports 15001$/m);
  });

  it('the HEALTHCHECK fails once the sidecar drains, and the container exits 0 when stopped', async () => {
    const drain = await fetch(`http://127.0.0.1:${await hostPort(15000)}/drain`, { method: 'POST' });
    assert.equal(drain.status, 200);
    await drain.arrayBuffer();
    assert.notEqual(await healthcheck(), 0, 'a draining sidecar must fail its HEALTHCHECK');
    // Failures count once the start period (10s from the start) is over, and 3 in a row make it unhealthy.
    const end = Date.now() + 20_000;
    while ((await healthStatus()) !== 'unhealthy' && Date.now() < end) { assert.notEqual(await healthcheck(), 0); await sleep(250); }
    assert.equal(await healthStatus(), 'unhealthy');
    await podman.run(['stop', '-t', '20', container], { timeoutMs: 30_000 });
    assert.equal((await podman.run(['inspect', container, '--format', '{{.State.ExitCode}}'])).stdout.trim(), '0');
  });
});
