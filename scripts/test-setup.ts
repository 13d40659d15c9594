// `npm test`'s set-up (run by `pretest`, after the build): prepares what takes longer than the runner's 120 s per-file
// timeout allows, once per machine. Today that is the offline Node 20 base image the container-image test builds
// deploy/Dockerfile on (a debootstrap, about 90 s; cached in SIDECAR_CONTAINER_CACHE). Best effort: when it cannot
// be done here (not root and podman missing, say), it says why and the container test itself fails with the
// exact command to run; the other tests still run.
import { nodeBaseImage, requirePodman } from '../test/helpers/container.js';

try {
  const podman = await requirePodman();
  const { image, builtMs } = await nodeBaseImage(podman);
  if (builtMs) console.log(`test set-up: ${image} built in ${(builtMs / 1000).toFixed(1)}s (cache ${podman.cacheDir})`);
} catch (err) {
  console.error(`test set-up: the container base image was not built (${(err as Error).message}); test/integration/container-image.test.ts will fail`);
}
