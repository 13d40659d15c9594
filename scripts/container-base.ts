// `node dist/scripts/container-base.js`: builds (once per cache) the offline Node 20 base image that
// test/integration/container-image.test.ts builds deploy/Dockerfile on (test/helpers/container.ts). `npm test` does
// the same through scripts/test-setup.ts (pretest), so that test pays only for the image build within the runner's
// per-file timeout.
// Environment: SIDECAR_CONTAINER_CACHE (podman storage and cache, default <tmp>/sidecar-container-cache).
import { nodeBaseImage, requirePodman } from '../test/helpers/container.js';

const podman = await requirePodman();
const { image, builtMs } = await nodeBaseImage(podman);
console.log(`${image}: ${builtMs ? `built in ${(builtMs / 1000).toFixed(1)}s` : 'already built'} (cache ${podman.cacheDir})`);
