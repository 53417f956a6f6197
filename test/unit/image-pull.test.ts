import { describe, expect, it } from 'vitest';
import {
  classifyPullError,
  IMAGE_PULL_REASONS,
  isImagePullEvent,
  isImagePullReason,
} from '../../lib/core/image-pull.ts';

// Messages as kubelets with containerd (and a few with dockershim or cri-dockerd) write them into
// `state.waiting.message` and `Failed`/`BackOff` events.
const DOCKER_HUB_429 =
  'rpc error: code = Unknown desc = failed to pull and unpack image "docker.io/library/busybox:latest": failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/busybox/manifests/sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit';
const ECR = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/jobs';

describe('image pull reasons and events', () => {
  it('knows the kubelet’s pull waiting reasons', () => {
    for (const reason of [
      'ErrImagePull',
      'ImagePullBackOff',
      'InvalidImageName',
      'ErrImageNeverPull',
      'RegistryUnavailable',
    ]) {
      expect(isImagePullReason(reason)).toBe(true);
    }
    expect(IMAGE_PULL_REASONS).toContain('ImageInspectError');
    for (const reason of [
      'ContainerCreating',
      'CrashLoopBackOff',
      'PodInitializing',
      'CreateContainerConfigError',
      undefined,
    ]) {
      expect(isImagePullReason(reason)).toBe(false);
    }
  });

  it.each([
    [
      'Failed',
      'Failed to pull image "busybox:nope": rpc error: code = NotFound desc = failed to pull and unpack image',
      true,
    ],
    ['Failed', 'Error: ErrImagePull', true],
    ['Failed', 'Error: ImagePullBackOff', true],
    ['BackOff', 'Back-off pulling image "busybox:nope"', true],
    ['BackOff', 'Back-off pulling image "busybox:nope": ErrImagePull: not found', true],
    ['ErrImageNeverPull', 'Container image "app:dev" is not present with pull policy of Never', true],
    [
      'InspectFailed',
      'Failed to apply default image tag "Nginx": couldn\'t parse image reference "Nginx"',
      true,
    ],
    ['BackOff', 'Back-off restarting failed container base in pod etl-1_airflow(6a1f4c52)', false],
    [
      'Failed',
      'Error: failed to create containerd task: failed to create shim task: OCI runtime create failed',
      false,
    ],
    ['Failed', 'Error: ErrImagePullSomethingElse', false],
    ['Pulling', 'Pulling image "busybox"', false],
    ['Pulled', 'Successfully pulled image "busybox" in 1.2s', false],
    ['Preempted', 'Preempted by pod 1b2c on node ip-10-0-1-1', false],
    ['toString', 'Failed to pull image', false],
  ])('isImagePullEvent(%j, %j) is %j', (reason, message, expected) => {
    expect(isImagePullEvent(reason, message)).toBe(expected);
  });
});

describe('classifyPullError', () => {
  it.each([
    ['Docker Hub rate limit', 'ErrImagePull', DOCKER_HUB_429, 'rate-limit', 'toomanyrequests'],
    [
      'the kubelet’s own registryPullQPS limiter',
      'ErrImagePull',
      'pull QPS exceeded.',
      'rate-limit',
      'pull QPS exceeded',
    ],
    [
      'ECR throttling',
      'ErrImagePull',
      `failed to pull and unpack image "${ECR}:2026.04.1": failed to resolve reference "${ECR}:2026.04.1": unexpected status from HEAD request to https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/v2/jobs/manifests/2026.04.1: 429 Too Many Requests`,
      'rate-limit',
      'Too Many Requests',
    ],
    ['ECR rate exceeded', 'ErrImagePull', 'toomanyrequests: Rate exceeded', 'rate-limit', 'toomanyrequests'],
    [
      'quay 503',
      'ErrImagePull',
      'failed to pull and unpack image "quay.io/prometheus/node-exporter:v1.8.2": failed to resolve reference "quay.io/prometheus/node-exporter:v1.8.2": unexpected status from HEAD request to https://quay.io/v2/prometheus/node-exporter/manifests/v1.8.2: 503 Service Unavailable',
      'registry-5xx',
      'Service Unavailable',
    ],
    [
      'GHCR 502',
      'ErrImagePull',
      'failed to pull and unpack image "ghcr.io/acme/tool:1.2.0": failed to copy: httpReadSeeker: failed open: unexpected status code https://ghcr.io/v2/acme/tool/blobs/sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1: 502 Bad Gateway',
      'registry-5xx',
      'Bad Gateway',
    ],
    [
      'dockerd 500',
      'ErrImagePull',
      'Error response from daemon: received unexpected HTTP status: 500 Internal Server Error',
      'registry-5xx',
      'Internal Server Error',
    ],
    ['a bare status code', 'ErrImagePull', 'unexpected status code: 504', 'registry-5xx', 'status code: 504'],
    [
      'i/o timeout',
      'ErrImagePull',
      'failed to pull and unpack image "registry.k8s.io/pause:3.9": failed to resolve reference "registry.k8s.io/pause:3.9": failed to do request: Head "https://registry.k8s.io/v2/pause/manifests/3.9": dial tcp 34.96.108.209:443: i/o timeout',
      'network',
      'i/o timeout',
    ],
    [
      'TLS handshake timeout',
      'ErrImagePull',
      'failed to pull and unpack image "docker.io/library/busybox:1.36": failed to resolve reference "docker.io/library/busybox:1.36": failed to do request: Head "https://registry-1.docker.io/v2/library/busybox/manifests/1.36": net/http: TLS handshake timeout',
      'network',
      'TLS handshake timeout',
    ],
    [
      'connection reset',
      'ErrImagePull',
      'failed to pull and unpack image "docker.io/library/python:3.12": failed to copy: read tcp 10.0.37.142:53422->104.16.99.55:443: read: connection reset by peer',
      'network',
      'connection reset',
    ],
    [
      'connection refused',
      'ErrImagePull',
      'failed to do request: Head "https://registry.internal:5000/v2/app/manifests/1": dial tcp 10.0.0.5:5000: connect: connection refused',
      'network',
      'connection refused',
    ],
    [
      'DNS no such host',
      'ErrImagePull',
      'failed to do request: Head "https://registry.internal/v2/app/manifests/1": dial tcp: lookup registry.internal on 10.96.0.10:53: no such host',
      'dns',
      'no such host',
    ],
    [
      'DNS server misbehaving',
      'ErrImagePull',
      'dial tcp: lookup registry-1.docker.io on 10.96.0.10:53: server misbehaving',
      'dns',
      'server misbehaving',
    ],
    [
      'DNS temporary failure',
      'ErrImagePull',
      'dial tcp: lookup quay.io: Temporary failure in name resolution',
      'dns',
      'Temporary failure in name resolution',
    ],
    [
      'bare kubelet back-off',
      'ImagePullBackOff',
      'Back-off pulling image "docker.io/library/busybox:1.36"',
      'back-off',
      'Back-off pulling image',
    ],
    [
      'back-off carrying a rate limit',
      'ImagePullBackOff',
      `Back-off pulling image "busybox": ErrImagePull: ${DOCKER_HUB_429}`,
      'rate-limit',
      'toomanyrequests',
    ],
    [
      'RegistryUnavailable without a known message',
      'RegistryUnavailable',
      'Get https://r.example/v2/: EOF',
      'registry-unavailable',
      'reason RegistryUnavailable',
    ],
  ])('%s is transient', (_name, reason, message, category, matched) => {
    expect(classifyPullError(reason, message)).toEqual({
      kind: 'transient',
      category,
      matched,
      untilDeadline: false,
    });
  });

  it.each([
    [
      'a tag that does not exist',
      'ErrImagePull',
      'failed to pull and unpack image "docker.io/library/busybox:1.99": failed to resolve reference "docker.io/library/busybox:1.99": docker.io/library/busybox:1.99: not found',
      'not-found',
      'not found',
    ],
    [
      'failed to resolve reference',
      'ErrImagePull',
      'failed to resolve reference "x": x: not found',
      'not-found',
      'not found',
    ],
    [
      'manifest unknown',
      'ErrImagePull',
      'Error response from daemon: manifest for nginx:1.99 not found: manifest unknown: manifest unknown',
      'not-found',
      'not found',
    ],
    [
      'a registry error code',
      'ErrImagePull',
      'failed to resolve reference "r/app:1": MANIFEST_UNKNOWN: manifest unknown',
      'not-found',
      'manifest unknown',
    ],
    [
      'insufficient_scope',
      'ErrImagePull',
      'pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed',
      'not-found',
      'repository does not exist',
    ],
    [
      'insufficient_scope alone',
      'ErrImagePull',
      'server message: insufficient_scope: authorization failed',
      'access-denied',
      'insufficient_scope',
    ],
    [
      'dockerd pull access denied',
      'ErrImagePull',
      "Error response from daemon: pull access denied for acme/private, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
      'not-found',
      'repository does not exist',
    ],
    [
      'ECR 403',
      'ErrImagePull',
      `failed to pull and unpack image "${ECR}:1": failed to resolve reference "${ECR}:1": unexpected status from HEAD request to https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/v2/jobs/manifests/1: 403 Forbidden`,
      'access-denied',
      'Forbidden',
    ],
    [
      'ECR IAM',
      'ErrImagePull',
      'denied: User: arn:aws:sts::123456789012:assumed-role/node/i-0abc is not authorized to perform: ecr:BatchGetImage',
      'access-denied',
      'not authorized to perform',
    ],
    ['a bare 403 status', 'ErrImagePull', 'unexpected status: 403', 'access-denied', 'status: 403'],
    [
      'no arm64 variant',
      'ErrImagePull',
      'failed to pull and unpack image "docker.io/acme/tool:1.0": no match for platform in manifest: not found',
      'platform',
      'no match for platform in manifest',
    ],
    [
      'InvalidImageName by reason',
      'InvalidImageName',
      'Failed to apply default image tag "Nginx:latest": couldn\'t parse image reference "Nginx:latest": invalid reference format: repository name (library/Nginx) must be lowercase',
      'invalid-image-name',
      'reason InvalidImageName',
    ],
    [
      'ErrImageNeverPull by reason',
      'ErrImageNeverPull',
      'Container image "app:dev" is not present with pull policy of Never',
      'never-pull',
      'reason ErrImageNeverPull',
    ],
    [
      'SignatureValidationFailed by reason',
      'SignatureValidationFailed',
      'image pull failed for x because the signature validation failed',
      'signature',
      'reason SignatureValidationFailed',
    ],
    [
      'a back-off carrying a not found',
      'ImagePullBackOff',
      `Back-off pulling image "${ECR}:2026.04.9": ErrImagePull: failed to resolve reference "${ECR}:2026.04.9": ${ECR}:2026.04.9: not found`,
      'not-found',
      'not found',
    ],
  ])('%s is permanent', (_name, reason, message, category, matched) => {
    expect(classifyPullError(reason, message)).toEqual({
      kind: 'permanent',
      category,
      matched,
      untilDeadline: false,
    });
  });

  it.each([
    [
      'ECR token',
      'ErrImagePull',
      'failed to resolve reference "x": pulling from host 123456789012.dkr.ecr.eu-west-1.amazonaws.com failed with status code [manifests 1]: 401 Unauthorized',
      'auth',
      '401 Unauthorized',
    ],
    [
      'unauthorized: authentication required',
      'ErrImagePull',
      'rpc error: code = Unknown desc = Error response from daemon: Get https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/v2/jobs/manifests/1: unauthorized: authentication required',
      'auth',
      'unauthorized',
    ],
    [
      'no basic auth credentials',
      'ErrImagePull',
      'Error response from daemon: Get https://r/v2/app/manifests/1: no basic auth credentials',
      'auth',
      'no basic auth credentials',
    ],
    [
      'a full disk',
      'ErrImagePull',
      'failed to pull and unpack image "x": failed to extract layer sha256:4f4f: write /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/42/fs/usr/lib/libpython3.12.so: no space left on device: unknown',
      'unknown',
      'no known pattern',
    ],
    ['an empty message', 'ErrImagePull', '', 'unknown', 'no known pattern'],
    [
      'the kubelet’s terse follow-up event',
      'ErrImagePull',
      'Error: ErrImagePull',
      'unknown',
      'no known pattern',
    ],
  ])('%s is transient until the deadline', (_name, reason, message, category, matched) => {
    expect(classifyPullError(reason, message)).toEqual({
      kind: 'transient',
      category,
      matched,
      untilDeadline: true,
    });
  });

  describe('precedence when a message carries both signals', () => {
    it('a 429 around a URL path or image name containing "not found" is transient: the registry never answered', () => {
      const message =
        'failed to resolve reference "registry.example.com/qa/not-found:1": unexpected status from HEAD request to https://registry.example.com/v2/qa/not found/manifests/1: 429 Too Many Requests';
      expect(classifyPullError('ErrImagePull', message)).toMatchObject({
        kind: 'transient',
        category: 'rate-limit',
      });
    });

    it('a 5xx wins over a permanent-looking word anywhere in the message', () => {
      expect(classifyPullError('ErrImagePull', 'manifest unknown? 503 Service Unavailable')).toMatchObject({
        kind: 'transient',
        category: 'registry-5xx',
      });
    });

    it('an image named after a transient signal does not hide a not found', () => {
      const message =
        'failed to resolve reference "docker.io/acme/toomanyrequests:1": docker.io/acme/toomanyrequests:1: not found';
      expect(classifyPullError('ErrImagePull', message)).toMatchObject({
        kind: 'permanent',
        category: 'not-found',
      });
    });

    it('digits in tags, ports and digests are not status codes', () => {
      const message =
        'failed to resolve reference "r.example:5000/app:503": r.example:5000/app:503: not found; tried 500 times';
      expect(classifyPullError('ErrImagePull', message)).toMatchObject({
        kind: 'permanent',
        category: 'not-found',
      });
    });

    it('a permanent answer wins over authentication', () => {
      expect(
        classifyPullError('ErrImagePull', 'pull access denied: unauthorized: authentication required'),
      ).toMatchObject({ kind: 'permanent', category: 'access-denied' });
    });

    it('a permanent waiting reason wins over any message', () => {
      expect(classifyPullError('InvalidImageName', DOCKER_HUB_429)).toMatchObject({ kind: 'permanent' });
    });
  });
});
