// `npm run image` builds the bridge's OCI image; this file builds it as that script does, checks the
// archive as an OCI layout, then runs the image's root filesystem as-is against the local control
// plane: unpacked, mounted read-only, entered with chroot as the image's user with no_new_privs, with
// the image's entrypoint and environment plus the Deployment `podwarden manifests` prints (its env,
// its args, its RBAC, a service-account token mounted where the kubelet mounts it). Containers
// themselves cannot run in this sandbox (podman's crun refuses: no CAP_SYS_RESOURCE, hybrid cgroups),
// so a container runtime's part (mount namespace, read-only root, user switch) is done by unshare,
// mount, setpriv and chroot. The bus is the PutEvents recorder (a fake: no EventBridge engine runs
// locally).
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
import { createInterface } from 'node:readline';
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

const cannotRun = runtimeProblem();
if (cannotRun) console.warn(`[image.test] skipping the run of the image: ${cannotRun}`);

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

  it('is read by skopeo as the image it says it is', (context) => {
    const skopeo = toolPath('skopeo');
    if (!skopeo) {
      console.warn('[image.test] skopeo is not installed: the archive is checked by this file alone');
      context.skip();
    }
    const inspected = spawnSync(skopeo!, ['inspect', `oci-archive:${archivePath}`], { encoding: 'utf8' });
    expect(inspected.stderr).toBe('');
    const answer = JSON.parse(inspected.stdout);
    expect(answer.Labels['org.opencontainers.image.version']).toBe(packageJson.version);
    expect(answer.Architecture).toBe(config.architecture);
  });
});

describe.skipIf(cannotRun !== undefined)('the image run as in a pod', () => {
  let kc: KubeConfig;
  let recorder: EventBridgeRecorder;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    kc = loadTestKubeConfig();
    recorder = await startEventBridgeRecorder();
  });

  afterAll(async () => {
    child?.kill('SIGKILL');
    await recorder?.close();
  });

  it('forwards a pod change, answers /readyz, and on SIGTERM flushes, hands back the lease and exits 0', async () => {
    const namespace = await createTestNamespace(kc, 'image-run');
    const cluster = `image-${randomBytes(3).toString('hex')}`;

    // What a user applies: the printed manifests (minus the Namespace the test made).
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

    // The kubelet's part: the service account's token, CA and namespace, and the Deployment's env.
    const core = kc.makeApiClient(CoreV1Api);
    const token = await core.createNamespacedServiceAccountToken({
      namespace,
      name: podSpec.serviceAccountName!,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const secrets = join(work, 'serviceaccount');
    mkdirSync(secrets, { recursive: true });
    writeFileSync(join(secrets, 'token'), token.status?.token ?? '');
    writeFileSync(join(secrets, 'ca.crt'), Buffer.from(kc.getCurrentCluster()!.caData!, 'base64'));
    writeFileSync(join(secrets, 'namespace'), namespace);
    const podName = `${deployment.metadata!.name}-7d9f8-x2x4q`;
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
      // A pod has a network namespace of its own; this process shares the machine's: any free port.
      PODWARDEN_METRICS_PORT: '0',
    });

    const root = unpackRootFilesystem();
    const argv = [...config.config.Entrypoint, ...(container.args ?? config.config.Cmd)];
    child = spawn(
      toolPath('unshare')!,
      ['--mount', '--', '/bin/sh', '-c', RUNTIME_SCRIPT, 'runtime', ...argv],
      {
        env: {
          ...env,
          IMAGE_ROOT: root,
          IMAGE_USER: config.config.User,
          SERVICE_ACCOUNT: secrets,
          MOUNT: toolPath('mount')!,
          SETPRIV: toolPath('setpriv')!,
          CHROOT: toolPath('chroot')!,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const lines: Array<Record<string, unknown>> = [];
    const stderr: string[] = [];
    createInterface(child.stdout!).on('line', (line) => {
      try {
        lines.push(JSON.parse(line));
      } catch {
        stderr.push(`not a JSON line: ${line}`);
      }
    });
    child.stderr!.on('data', (chunk) => stderr.push(String(chunk)));
    const exited = new Promise<number | null>((resolve) => child!.on('exit', (code) => resolve(code)));

    const port = await waitFor(
      'the bridge in the image to start',
      async () => {
        if (child!.exitCode !== null) throw new Error(`exited ${child!.exitCode}: ${stderr.join('')}`);
        return lines.find((line) => line.msg === 'bridge started')?.port as number | undefined;
      },
      90_000,
    );
    await waitFor('/readyz to answer 200', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok);
    // The process is what the image says: its user, no way to gain privileges, no capabilities.
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    expect(status).toMatch(new RegExp(`^Uid:\\s+${BRIDGE_IMAGE_UID}\\s+${BRIDGE_IMAGE_UID}\\s`, 'm'));
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    // ... and it sees the image's root filesystem as "/", read-only.
    expect(readlinkSync(`/proc/${child.pid}/root`)).toBe(root);
    const rootMount = readFileSync(`/proc/${child.pid}/mountinfo`, 'utf8')
      .split('\n')
      .map((line) => line.split(' '))
      .find((fields) => fields[4] === '/');
    expect(rootMount?.[5]?.split(',')).toContain('ro');

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

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr.join('')).toBe('');
    expect(lines.find((line) => line.msg === 'bridge stopped')).toMatchObject({
      failed: 0,
      undeliveredAtShutdown: 0,
    });
    const lease = await kc
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ namespace, name: env.PODWARDEN_LEASE_NAME! });
    expect(lease.spec?.holderIdentity ?? '').toBe('');
  });
});

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
