/** How fast pull errors are classified: the bridge and the engine classify every pull event. */
import { classifyPullError, isImagePullEvent } from '../../lib/core/image-pull.ts';
import { formatOps, measureOpsPerSecond } from './measure.ts';
import type { Report } from './run.ts';

const DOCKER_HUB_429 =
  'rpc error: code = Unknown desc = failed to pull and unpack image "docker.io/library/busybox:latest": failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/busybox/manifests/sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit';
const NO_SPACE =
  'failed to pull and unpack image "docker.io/library/python:3.12": failed to extract layer sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1: write /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/42/fs/usr/lib/libpython3.12.so: no space left on device: unknown';

/** A mix as a busy cluster might see it: mostly rate limits and back-offs, some permanent errors. */
const MIXED: ReadonlyArray<readonly [string, string]> = [
  ['ErrImagePull', DOCKER_HUB_429],
  ['ImagePullBackOff', 'Back-off pulling image "docker.io/library/busybox:1.36"'],
  ['ErrImagePull', 'pull QPS exceeded.'],
  [
    'ErrImagePull',
    'failed to pull and unpack image "quay.io/prometheus/node-exporter:v1.8.2": failed to resolve reference "quay.io/prometheus/node-exporter:v1.8.2": unexpected status from HEAD request to https://quay.io/v2/prometheus/node-exporter/manifests/v1.8.2: 503 Service Unavailable',
  ],
  [
    'ErrImagePull',
    'failed to pull and unpack image "docker.io/library/busybox:1.99": failed to resolve reference "docker.io/library/busybox:1.99": docker.io/library/busybox:1.99: not found',
  ],
  [
    'ErrImagePull',
    'pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed',
  ],
  ['ErrImagePull', 'unauthorized: authentication required'],
  [
    'InvalidImageName',
    'Failed to apply default image tag "Nginx:latest": couldn\'t parse image reference "Nginx:latest"',
  ],
  ['ErrImagePull', NO_SPACE],
];

export default async function classifyBench(report: Report): Promise<void> {
  let next = 0;
  const mixed = await measureOpsPerSecond(() => {
    const [reason, message] = MIXED[next++ % MIXED.length]!;
    return classifyPullError(reason, message);
  });
  report('classifyPullError, mixed real messages', formatOps(mixed));
  report(
    'classifyPullError, Docker Hub 429 (first rule hits)',
    formatOps(await measureOpsPerSecond(() => classifyPullError('ErrImagePull', DOCKER_HUB_429))),
  );
  report(
    'classifyPullError, unknown message (every rule tried)',
    formatOps(await measureOpsPerSecond(() => classifyPullError('ErrImagePull', NO_SPACE))),
  );
  report(
    'isImagePullEvent, Failed event',
    formatOps(
      await measureOpsPerSecond(() =>
        isImagePullEvent('Failed', `Failed to pull image "busybox": ${DOCKER_HUB_429}`),
      ),
    ),
  );
}
