// `npm run image` builds the bridge's OCI image; this file builds it as that script does, checks the
// archive as an OCI layout, then runs the image against the local control plane the way the
// Deployment `podwarden manifests` prints would run it (its env, args and RBAC, a service-account
// token mounted where the kubelet mounts it), in two ways:
// - as a podman container (read-only root, all capabilities dropped, no-new-privileges), when podman
//   is installed and can run containers on this machine;
// - as its root filesystem executed as-is, when running as root: unpacked, mounted read-only in a
//   mount namespace of its own, entered with chroot as the image's user with no_new_privs (a
//   container runtime's steps, done by unshare, mount, setpriv and chroot).
// Each is skipped with a printed reason where the machine lacks what it needs, unless
// PODWARDEN_IMAGE_RUNS_REQUIRED=1 (set by .ci/run once scripts/image/container-tools.sh has
// installed podman, runc and skopeo): then a run that cannot happen fails, so CI never passes on a
// skip. The bus is the PutEvents recorder (a fake: no EventBridge engine runs locally).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  CoordinationV1Api,
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  type V1Deployment,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as runManifests } from '../../bin/commands/manifests.ts';
import { BRIDGE_IMAGE_UID, DEFAULT_BRIDGE_IMAGE } from '../../lib/bridge/image.ts';
import { parseInboundEvent } from '../../lib/core/inbound.ts';
import packageJson from '../../package.json' with { type: 'json' };
import { followBridgeLog } from '../support/bridge-log.ts';
import { type EventBridgeRecorder, startEventBridgeRecorder } from '../support/eventbridge-recorder.ts';
import { createTestNamespace, loadTestKubeConfig, taskPod, waitFor } from './support.ts';

const REPO = new URL('../..', import.meta.url).pathname;
const TOOLS = ['unshare', 'mount', 'setpriv', 'chroot', 'tar'] as const;

/** Why this machine cannot run the root filesystem as a container runtime would, if it cannot. */
function runtimeProblem(): string | undefined {
  if (process.platform !== 'linux') return `needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'needs root: it mounts and chroots as a container runtime does';
  const missing = TOOLS.filter((tool) => !toolPath(tool));
  if (missing.length > 0) return `needs ${missing.join(', ')} (util-linux, coreutils, tar)`;
  const probe = spawnSync(toolPath('unshare')!, ['--mount', 'true'], { encoding: 'utf8' });
  if (probe.status !== 0)
    return `cannot make a mount namespace: ${probe.stderr.trim() || probe.error?.message}`;
  return undefined;
}

function toolPath(tool: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${tool}`], {
    encoding: 'utf8',
    env: { PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin:/usr/bin:/bin` },
  });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

const runsRequired = process.env.PODWARDEN_IMAGE_RUNS_REQUIRED === '1';
const cannotRun = runtimeProblem();
if (cannotRun && !runsRequired)
  console.warn(`[image.test] skipping the run of the root filesystem: ${cannotRun}`);

/** Skips with the reason printed, or fails where every run is required. */
function skipOrFail(context: { skip: () => void }, what: string, problem: string): void {
  if (runsRequired) throw new Error(`${what} is required (PODWARDEN_IMAGE_RUNS_REQUIRED=1): ${problem}`);
  console.warn(`[image.test] skipping ${what}: ${problem}`);
  context.skip();
}

interface ImageConfig {
  architecture: string;
  os: string;
  config: {
    User: string;
    Entrypoint: string[];
    Cmd: string[];
    Env: string[];
    ExposedPorts: Record<string, unknown>;
    Labels: Record<string, string>;
    StopSignal: string;
  };
  rootfs: { diff_ids: string[] };
}

const sha256 = (content: Buffer) => `sha256:${createHash('sha256').update(content).digest('hex')}`;

let work: string;
let buildOutput: string;
let archivePath: string;
let layout: string;
interface Descriptor {
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: unknown;
}
let index: { manifests: Descriptor[] };
let manifest: { config: Descriptor; layers: Descriptor[] };
let config: ImageConfig;
let layerTar: Buffer;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'podwarden-image-test-'));
  // The script `npm run image` runs, on the project's Node 24.
  const built = spawnSync(process.execPath, ['scripts/image/build.ts', '--out', join(work, 'out')], {
    cwd: REPO,
    encoding: 'utf8',
  });
  if (built.status !== 0) throw new Error(`npm run image failed:\n${built.stderr}${built.stdout}`);
  buildOutput = built.stdout;
  archivePath = join(work, 'out', `podwarden-${packageJson.version}.oci.tar`);
  layout = join(work, 'layout');
  mkdirSync(layout);
  const untar = spawnSync('tar', ['-xf', archivePath, '-C', layout], { encoding: 'utf8' });
  if (untar.status !== 0) throw new Error(`tar -xf ${archivePath}: ${untar.stderr}`);
  index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  manifest = JSON.parse(blob(index.manifests[0]!.digest).toString('utf8'));
  config = JSON.parse(blob(manifest.config.digest).toString('utf8'));
  layerTar = gunzipSync(blob(manifest.layers[0]!.digest));
  writeFileSync(join(work, 'layer.tar'), layerTar);
}, 180_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function blob(digest: string): Buffer {
  return readFileSync(join(layout, 'blobs/sha256', digest.replace(/^sha256:/, '')));
}

describe('npm run image', () => {
  it('writes an OCI archive whose every blob matches its digest, tagged podwarden:<version>', () => {
    expect(buildOutput).toMatch(
      /^size: [\d.]+ MB uncompressed \(node [\d.]+ MB, .*\); [\d.]+ MB compressed$/m,
    );
    expect(JSON.parse(readFileSync(join(layout, 'oci-layout'), 'utf8'))).toEqual({
      imageLayoutVersion: '1.0.0',
    });
    expect(index.manifests).toHaveLength(1);
    const entry = index.manifests[0]!;
    expect(entry.annotations?.['org.opencontainers.image.ref.name']).toBe(DEFAULT_BRIDGE_IMAGE);
    const manifestBytes = blob(entry.digest);
    expect(sha256(manifestBytes)).toBe(entry.digest);
    expect(manifestBytes.length).toBe(entry.size);
    for (const descriptor of [manifest.config, ...manifest.layers]) {
      const content = blob(descriptor.digest);
      expect(sha256(content)).toBe(descriptor.digest);
      expect(content.length).toBe(descriptor.size);
    }
    expect(manifest.layers).toHaveLength(1);
    expect(config.rootfs.diff_ids).toEqual([sha256(layerTar)]);
    expect(entry.platform).toEqual({ architecture: config.architecture, os: 'linux' });
  });

  it('runs the bundled CLI as a numeric non-root user, declares the metrics port and labels version and revision', () => {
    const { User, Entrypoint, Cmd, ExposedPorts, Labels, StopSignal, Env } = config.config;
    expect(User).toBe(`${BRIDGE_IMAGE_UID}:${BRIDGE_IMAGE_UID}`);
    expect(Entrypoint).toEqual([
      '/usr/local/bin/node',
      '--use-system-ca',
      '/opt/podwarden/bin/podwarden.mjs',
    ]);
    expect(Cmd).toEqual(['bridge']);
    expect(Object.keys(ExposedPorts)).toEqual(['8080/tcp']);
    expect(StopSignal).toBe('SIGTERM');
    expect(Env).toContain('SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt');
    expect(Labels['org.opencontainers.image.version']).toBe(packageJson.version);
    const head = spawnSync('git', ['-C', REPO, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
    if (head) expect(Labels['org.opencontainers.image.revision']).toBe(head);
    expect(Labels['io.podwarden.probe.readiness']).toBe('http GET :8080/readyz');
    expect(Labels['io.podwarden.probe.liveness']).toBe('http GET :8080/healthz');
  });

  it('holds the Node binary, its libraries, the bundle, CA certificates and licences, all owned by root', () => {
    const listing = spawnSync('tar', ['-tvf', join(work, 'layer.tar'), '--numeric-owner'], {
      encoding: 'utf8',
    });
    expect(listing.status).toBe(0);
    const rows = listing.stdout
      .trim()
      .split('\n')
      .map((line) => {
        const [mode, owner, size, , , ...path] = line.split(/\s+/);
        return { mode: mode ?? '', owner: owner ?? '', size: Number(size), path: path.join(' ') };
      });
    const files = rows.filter((row) => row.mode.startsWith('-')).map((row) => row.path);
    const allowed = [
      /^usr\/local\/bin\/node$/,
      /^lib(64)?\/([a-z0-9_-]+\/)?(ld-linux[\w.-]*|lib[\w+-]+)\.so\.\d+$/,
      /^opt\/podwarden\/(bin\/podwarden\.mjs|package\.json|THIRD-PARTY-NOTICES\.txt)$/,
      /^etc\/(passwd|group|nsswitch\.conf|ssl\/certs\/ca-certificates\.crt)$/,
      /^usr\/share\/doc\/[\w.+-]+\/(copyright|LICENSE)$/,
    ];
    expect(files.filter((path) => !allowed.some((pattern) => pattern.test(path)))).toEqual([]);
    expect(files).toContain('usr/local/bin/node');
    expect(files).toContain('etc/ssl/certs/ca-certificates.crt');
    // Only the user's home is the user's; nothing the process runs from is writable by it.
    const notRoot = rows.filter((row) => row.owner !== '0/0').map((row) => row.path);
    expect(notRoot).toEqual(['home/podwarden/']);
    expect(
      rows.filter((row) => /^.{8}w/.test(row.mode) && row.path !== 'tmp/').map((row) => row.path),
    ).toEqual([]);
  });

  it('is reproducible: a second build of the same tree gives the same bytes', () => {
    const again = spawnSync(process.execPath, ['scripts/image/build.ts', '--out', join(work, 'again')], {
      cwd: REPO,
      encoding: 'utf8',
    });
    expect(again.status).toBe(0);
    const second = readFileSync(join(work, 'again', `podwarden-${packageJson.version}.oci.tar`));
    expect(sha256(second)).toBe(sha256(readFileSync(archivePath)));
  }, 120_000);

  it('is read by skopeo as the image it says it is', (context) => {
    const skopeo = toolPath('skopeo');
    if (!skopeo) {
      skipOrFail(
        context,
        'the skopeo check',
        'skopeo is not installed (the archive is checked by this file alone)',
      );
      return;
    }
    const inspected = spawnSync(skopeo!, ['inspect', `oci-archive:${archivePath}`], { encoding: 'utf8' });
    expect(inspected.stderr).toBe('');
    const answer = JSON.parse(inspected.stdout);
    expect(answer.Labels['org.opencontainers.image.version']).toBe(packageJson.version);
    expect(answer.Architecture).toBe(config.architecture);
  });
});

describe('the image run as in a pod', () => {
  let kc: KubeConfig;
  let recorder: EventBridgeRecorder;
  const stopLater: Array<() => void> = [];

  beforeAll(async () => {
    kc = loadTestKubeConfig();
    recorder = await startEventBridgeRecorder();
  });

  afterAll(async () => {
    for (const stop of stopLater.splice(0)) stop();
    await recorder?.close();
  });

  it('as a podman container: forwards a pod change, answers /readyz, exits 0 on SIGTERM', async (context) => {
    const podman = await podmanRunner();
    if ('problem' in podman) {
      skipOrFail(context, 'the podman run', podman.problem);
      return;
    }
    stopLater.push(podman.removeImage);
    await proveInPod(kc, recorder, 'podman', (pod) => {
      const name = `podwarden-image-test-${randomBytes(4).toString('hex')}`;
      const child = spawn(
        'podman',
        [
          ...podman.globalArgs,
          'run',
          ...['--rm', '--name', name, '--network', 'host', ...podman.runArgs],
          // What the printed securityContext asks of the runtime.
          ...['--read-only', '--read-only-tmpfs=false', '--cap-drop', 'ALL'],
          ...['--security-opt', 'no-new-privileges'],
          ...['--volume', `${pod.serviceAccountDir}:/var/run/secrets/kubernetes.io/serviceaccount:ro`],
          ...Object.entries(pod.env).flatMap(([key, value]) => ['--env', `${key}=${value}`]),
          podman.image,
          ...pod.args,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      stopLater.push(() =>
        spawnSync('podman', [...podman.globalArgs, 'rm', '-f', name], { stdio: 'ignore' }),
      );
      return {
        child,
        pid: async () => {
          const inspected = spawnSync(
            'podman',
            [...podman.globalArgs, 'inspect', '--format', '{{.State.Pid}}', name],
            {
              encoding: 'utf8',
            },
          );
          const pid = Number(inspected.stdout.trim());
          return pid > 0 ? pid : undefined;
        },
        // As the kubelet does: the runtime signals the container's process.
        terminate: () => spawnSync('podman', [...podman.globalArgs, 'kill', '--signal', 'SIGTERM', name]),
      };
    });
  });

  it.skipIf(cannotRun !== undefined && !runsRequired)(
    'as its root filesystem, read-only, under unshare and chroot: forwards a pod change, answers /readyz, exits 0 on SIGTERM',
    async () => {
      if (cannotRun) throw new Error(`the root-filesystem run is required: ${cannotRun}`);
      const root = unpackRootFilesystem();
      await proveInPod(kc, recorder, 'chroot', (pod) => {
        const child = spawn(
          toolPath('unshare')!,
          [
            '--mount',
            '--',
            '/bin/sh',
            '-c',
            RUNTIME_SCRIPT,
            'runtime',
            ...config.config.Entrypoint,
            ...pod.args,
          ],
          {
            env: {
              ...pod.env,
              IMAGE_ROOT: root,
              IMAGE_USER: config.config.User,
              SERVICE_ACCOUNT: pod.serviceAccountDir,
              MOUNT: toolPath('mount')!,
              SETPRIV: toolPath('setpriv')!,
              CHROOT: toolPath('chroot')!,
            },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        stopLater.push(() => child.kill('SIGKILL'));
        return { child, pid: async () => child.pid, terminate: () => child.kill('SIGTERM'), root };
      });
    },
  );
});

interface PodToRun {
  /** The image's Env, then the Deployment's env resolved as the kubelet would, then the test's. */
  env: Record<string, string>;
  /** The Deployment's args (they replace the image's Cmd; its Entrypoint stays). */
  args: string[];
  serviceAccountDir: string;
}

interface RunningImage {
  child: ChildProcess;
  /** The bridge's process id as this machine sees it. */
  pid: () => Promise<number | undefined>;
  terminate: () => void;
  /** Where its root filesystem is, when the runner knows. */
  root?: string;
}

/**
 * Applies what `podwarden manifests` prints for a fresh namespace, plays the kubelet's part (the
 * service account's token, CA and namespace files; the container's env and args), starts the image
 * with `start`, and checks it end to end: it runs as the image's user with no privileges, on a
 * read-only root, becomes ready, forwards a managed pod's change, and on SIGTERM exits 0 having
 * delivered everything and handed back its lease.
 */
async function proveInPod(
  kc: KubeConfig,
  recorder: EventBridgeRecorder,
  runner: string,
  start: (pod: PodToRun) => RunningImage,
): Promise<void> {
  const namespace = await createTestNamespace(kc, `image-${runner}`);
  const cluster = `image-${randomBytes(3).toString('hex')}`;
  const printed = await printManifests([
    ...['--cluster', cluster, '--bus', 'podwarden-test', '--region', 'eu-west-1'],
    ...['--role-arn', 'arn:aws:iam::123456789012:role/podwarden-bridge', '--format', 'json'],
    ...['--namespace', namespace, '--namespaces', namespace, '--no-namespace', '--replicas', '1'],
  ]);
  const client = KubernetesObjectApi.makeApiClient(kc);
  for (const object of printed) await client.create(object);
  const deployment = printed.find((object) => object.kind === 'Deployment') as V1Deployment;
  const podSpec = deployment.spec!.template.spec!;
  const container = podSpec.containers[0]!;
  expect(container.image).toBe(DEFAULT_BRIDGE_IMAGE);

  const core = kc.makeApiClient(CoreV1Api);
  const token = await core.createNamespacedServiceAccountToken({
    namespace,
    name: podSpec.serviceAccountName!,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const serviceAccountDir = join(work, `serviceaccount-${runner}`);
  mkdirSync(serviceAccountDir, { recursive: true });
  writeFileSync(join(serviceAccountDir, 'token'), token.status?.token ?? '');
  writeFileSync(join(serviceAccountDir, 'ca.crt'), Buffer.from(kc.getCurrentCluster()!.caData!, 'base64'));
  writeFileSync(join(serviceAccountDir, 'namespace'), namespace);
  const podName = `${deployment.metadata!.name}-7d9f8-${runner}`;
  const env: Record<string, string> = {};
  for (const variable of config.config.Env) {
    const at = variable.indexOf('=');
    env[variable.slice(0, at)] = variable.slice(at + 1);
  }
  for (const variable of container.env ?? []) {
    const field = variable.valueFrom?.fieldRef?.fieldPath;
    env[variable.name] =
      variable.value ??
      (field === 'metadata.namespace' ? namespace : field === 'metadata.name' ? podName : '');
  }
  const server = new URL(kc.getCurrentCluster()!.server);
  Object.assign(env, {
    KUBERNETES_SERVICE_HOST: server.hostname,
    KUBERNETES_SERVICE_PORT: server.port,
    // IRSA's part in EKS; here the recorder takes any signature.
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    PODWARDEN_EVENTBRIDGE_ENDPOINT: recorder.endpoint,
    // A pod has a network namespace of its own; this one shares the machine's: any free port.
    PODWARDEN_METRICS_PORT: '0',
  });

  const running = start({ env, args: container.args ?? config.config.Cmd, serviceAccountDir });
  const log = followBridgeLog(running.child);

  const started = await log.waitFor('bridge started', 90_000);
  const port = started.port as number;
  await waitFor('/readyz to answer 200', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok);
  // The process is what the image and the securityContext say: the image's user, no way to gain
  // privileges, no capabilities, the image's root filesystem as "/", read-only.
  const pid = await waitFor('the bridge process id', running.pid);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  expect(status).toMatch(new RegExp(`^Uid:\\s+${BRIDGE_IMAGE_UID}\\s+${BRIDGE_IMAGE_UID}\\s`, 'm'));
  expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
  expect(status).toMatch(/^CapEff:\s+0+$/m);
  if (running.root) expect(readlinkSync(`/proc/${pid}/root`)).toBe(running.root);
  const rootMount = readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
    .split('\n')
    .map((line) => line.split(' '))
    .find((fields) => fields[4] === '/');
  expect(rootMount?.[5]?.split(',')).toContain('ro');
  expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]).toBe(config.config.Entrypoint[0]);

  await core.createNamespacedPod({
    namespace,
    body: taskPod({
      name: 'through-the-image',
      namespace,
      behaviour: { kind: 'run' },
      labels: {
        kubernetes_pod_operator: 'True',
        dag_id: 'image_test',
        task_id: 'through-the-image',
        run_id: 'manual__1',
        try_number: '1',
      },
    }),
  });
  await waitFor('the pod change to reach the bus', async () =>
    recorder.targetEvents().some((event) => {
      const parsed = parseInboundEvent(event);
      return parsed.ok && parsed.cluster === cluster && parsed.podName === 'through-the-image';
    }),
  );
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  expect(metrics).toContain('podwarden_bridge_is_leader 1');

  running.terminate();
  expect(await log.exited).toBe(0);
  expect(log.stderr.join('')).toBe('');
  expect(log.find('bridge stopped')).toMatchObject({
    failed: 0,
    undeliveredAtShutdown: 0,
  });
  const lease = await kc
    .makeApiClient(CoordinationV1Api)
    .readNamespacedLease({ namespace, name: env.PODWARDEN_LEASE_NAME! });
  expect(lease.spec?.holderIdentity ?? '').toBe('');
}

type PodmanRunner =
  | { image: string; globalArgs: string[]; runArgs: string[]; removeImage: () => void }
  | { problem: string };

/**
 * Loads the archive into podman and finds a way it can run it here, or says why it cannot. No
 * systemd: cgroupfs. Sandboxes without CAP_SYS_RESOURCE refuse podman's default (raised) ulimits,
 * so the container gets modest ones; crun refuses hybrid cgroup hierarchies where runc does not.
 */
async function podmanRunner(): Promise<PodmanRunner> {
  if (!toolPath('podman')) return { problem: 'podman is not installed' };
  if (process.getuid?.() !== 0) return { problem: 'rootless podman is not tried: run as root' };
  const globalArgs = ['--cgroup-manager=cgroupfs'];
  const loaded = spawnSync('podman', [...globalArgs, 'load', '--quiet', '--input', archivePath], {
    encoding: 'utf8',
  });
  const image = /Loaded image(?:\(s\))?: (\S+)/.exec(loaded.stdout)?.[1];
  if (loaded.status !== 0 || !image) {
    return { problem: `podman load failed: ${(loaded.stderr || loaded.stdout).trim()}` };
  }
  const removeImage = () =>
    spawnSync('podman', [...globalArgs, 'rmi', '--force', image], { stdio: 'ignore' });
  const problems: string[] = [];
  for (const runtime of [[], ['--runtime', 'runc']]) {
    const runArgs = ['--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=4096:4096'];
    const probe = spawnSync(
      'podman',
      [...globalArgs, ...runtime, 'run', '--rm', '--network', 'host', ...runArgs, image, '--version'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (probe.status === 0 && probe.stdout.startsWith(`podwarden ${packageJson.version} `)) {
      console.info(`[image.test] podman runs the image with ${runtime.join(' ') || 'its default runtime'}`);
      return { image, globalArgs: [...globalArgs, ...runtime], runArgs, removeImage };
    }
    problems.push(
      `${runtime.join(' ') || 'default runtime'}: ${(probe.stderr || probe.stdout).trim().split('\n').at(-1)}`,
    );
  }
  removeImage();
  return { problem: `podman cannot run a container here (${problems.join('; ')})` };
}

/**
 * A container runtime's steps, in the mount namespace `unshare --mount` made (gone with the process):
 * the root read-only, /proc, a small /dev, the service-account volume as the kubelet mounts it; then
 * chroot as the image's user with no_new_privs (allowPrivilegeEscalation: false) and exec the
 * entrypoint, so the bridge is this very process and gets the signal itself.
 */
const RUNTIME_SCRIPT = `set -eu
"$MOUNT" --bind "$IMAGE_ROOT" "$IMAGE_ROOT"
"$MOUNT" -o remount,bind,ro "$IMAGE_ROOT"
"$MOUNT" -t proc proc "$IMAGE_ROOT/proc"
"$MOUNT" -t tmpfs -o mode=755,size=64k tmpfs "$IMAGE_ROOT/dev"
for device in null zero random urandom; do
  : > "$IMAGE_ROOT/dev/$device"
  "$MOUNT" --bind "/dev/$device" "$IMAGE_ROOT/dev/$device"
done
"$MOUNT" -t tmpfs -o mode=755,size=64k tmpfs "$IMAGE_ROOT/var/run/secrets"
mkdir -p "$IMAGE_ROOT/var/run/secrets/kubernetes.io/serviceaccount"
"$MOUNT" --bind -o ro "$SERVICE_ACCOUNT" "$IMAGE_ROOT/var/run/secrets/kubernetes.io/serviceaccount"
root=$IMAGE_ROOT user=$IMAGE_USER setpriv=$SETPRIV chroot=$CHROOT
unset IMAGE_ROOT IMAGE_USER SERVICE_ACCOUNT MOUNT SETPRIV CHROOT
exec "$setpriv" --no-new-privs "$chroot" --userspec="$user" "$root" "$@"
`;

function unpackRootFilesystem(): string {
  const root = join(work, 'rootfs');
  mkdirSync(root);
  // A runtime's root directory is traversable by the image's user (mkdtemp's parent is 0700).
  chmodSync(root, 0o755);
  const untar = spawnSync('tar', ['-xf', join(work, 'layer.tar'), '-C', root, '--numeric-owner'], {
    encoding: 'utf8',
  });
  if (untar.status !== 0) throw new Error(`unpacking the layer: ${untar.stderr}`);
  if (!existsSync(join(root, 'usr/local/bin/node'))) throw new Error('the layer has no /usr/local/bin/node');
  return root;
}

async function printManifests(argv: string[]): Promise<KubernetesObject[]> {
  const { PassThrough } = await import('node:stream');
  const stdout = new PassThrough();
  const chunks: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  const code = await runManifests(argv, { stdin: new PassThrough(), stdout, stderr: new PassThrough() });
  if (code !== 0) throw new Error(`podwarden manifests exited ${code}`);
  return (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { items: KubernetesObject[] }).items;
}
