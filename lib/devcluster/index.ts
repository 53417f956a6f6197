import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException, CoreV1Api, KubeConfig, SchedulingV1Api } from '@kubernetes/client-node';
import { controlPlaneScriptsDir, resolveControlPlaneBinaries } from './binaries.ts';
import { generateCertificates, writeKubeconfig } from './certs.ts';
import { fakeNodeAnnotation, fakeNodeManifest, priorityClassManifests } from './manifests.ts';
import { freeLoopbackPorts } from './ports.ts';
import { type Component, logTail, onAbnormalExit, startComponent, stopComponent } from './processes.ts';

export {
  type ControlPlaneBinaries,
  ControlPlaneBinariesMissingError,
  type ControlPlaneVersions,
  controlPlaneCacheDir,
  controlPlaneVersions,
  resolveControlPlaneBinaries,
} from './binaries.ts';
export * from './manifests.ts';

export interface ControlPlaneOptions {
  /** Where certificates, data, logs and the kubeconfig go; kept after stop(). Default: a fresh temp dir, removed by stop(). */
  workDir?: string;
  /** Fake nodes to create (kwok-node-0, ...), each 2 CPU, 4Gi, 110 pods. Default 2. */
  nodes?: number;
  /** Progress lines (what started, how long readiness took). */
  log?: (line: string) => void;
  /** Deadline for the whole start-up. Default 120 s: the machine is often busy. */
  startTimeoutMs?: number;
}

export interface ControlPlane {
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  workDir: string;
  /** Names of the fake nodes created at start. */
  nodeNames: string[];
  /** Stops every process of the control plane; safe to call more than once. */
  stop(): Promise<void>;
  /** Stops the kube-apiserver alone (fault tests: the API server restarting under a reconcile). */
  stopApiserver(): Promise<void>;
  /** Starts the kube-apiserver again, same port, certificates and etcd, and waits for /readyz. */
  startApiserver(): Promise<void>;
}

// TLS material for probing components the way a client would.
interface Tls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

function probeUrl(url: string, tls?: Tls): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const options = { timeout: 5000, ...(tls ?? {}) };
    const req = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

class StartupError extends Error {
  override name = 'ControlPlaneStartupError';
}

/**
 * Polls `ready` until it returns true, the component exits, or the start-up deadline passes;
 * either failure names the component and shows the end of its log.
 */
async function waitReady(
  component: Component,
  what: string,
  deadline: number,
  ready: () => Promise<boolean>,
): Promise<void> {
  let lastProblem = 'not probed yet';
  for (;;) {
    if (component.hasExited()) {
      const exit = await component.exited;
      throw new StartupError(
        `${component.name} exited (code ${exit.code}, signal ${exit.signal}) before ${what}; ` +
          `end of ${component.logPath}:\n${logTail(component)}`,
      );
    }
    try {
      if (await ready()) return;
      lastProblem = 'not ready yet';
    } catch (error) {
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() >= deadline) {
      throw new StartupError(
        `${component.name}: gave up waiting for ${what} (last: ${lastProblem}); ` +
          `end of ${component.logPath}:\n${logTail(component)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Starts etcd, kube-apiserver, kube-scheduler and KWOK on free loopback ports, creates the fake
 * nodes and the test PriorityClasses, and resolves once all of them are ready.
 */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const started = Date.now();
  const deadline = started + (options.startTimeoutMs ?? 120_000);
  const log = options.log ?? (() => {});
  const nodeCount = options.nodes ?? 2;
  if (!Number.isInteger(nodeCount) || nodeCount < 0) {
    throw new Error(`nodes must be a whole number >= 0, got ${options.nodes}`);
  }
  const binaries = resolveControlPlaneBinaries();
  const ownsWorkDir = options.workDir === undefined;
  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), 'podwarden-controlplane-')));
  const dirs = {
    pki: join(workDir, 'pki'),
    etcd: join(workDir, 'etcd-data'),
    logs: join(workDir, 'logs'),
    schedulerCerts: join(workDir, 'scheduler-certs'),
  };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true, mode: 0o700 });

  const components: Component[] = [];
  // etcd preallocates ~100 MB; do not leave that in /tmp when the process is interrupted.
  const forgetWorkDir =
    ownsWorkDir && !process.env.PODWARDEN_KEEP_CONTROLPLANE
      ? onAbnormalExit(() => rmSync(workDir, { recursive: true, force: true }))
      : () => false;
  let stopped = false;
  const shutdown = async (removeWorkDir: boolean): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // Clients of the API server first, then the API server, then its storage.
    const byName = (name: string) => components.filter((c) => c.name === name);
    const order = [['kwok', 'kube-scheduler'], ['kube-apiserver'], ['etcd']];
    const failures: string[] = [];
    for (const names of order) {
      const results = await Promise.allSettled(names.flatMap(byName).map((c) => stopComponent(c)));
      for (const result of results) if (result.status === 'rejected') failures.push(String(result.reason));
    }
    forgetWorkDir();
    if (removeWorkDir && failures.length === 0) await rm(workDir, { recursive: true, force: true });
    if (failures.length > 0) throw new Error(`stopping the control plane: ${failures.join('; ')}`);
  };
  const stop = () => shutdown(ownsWorkDir && !process.env.PODWARDEN_KEEP_CONTROLPLANE);

  try {
    const certs = await generateCertificates(dirs.pki);
    const tls: Tls = {
      ca: await readFile(certs.caCert),
      cert: await readFile(certs.admin.cert),
      key: await readFile(certs.admin.key),
    };
    const [etcdClientPort, etcdPeerPort, apiserverPort, schedulerPort] = await freeLoopbackPorts(4);
    const server = `https://127.0.0.1:${apiserverPort}`;
    const kubeconfigPath = join(workDir, 'kubeconfig');
    const schedulerKubeconfig = join(workDir, 'scheduler.kubeconfig');
    await writeKubeconfig(kubeconfigPath, server, certs.caCert, certs.admin, 'admin');
    await writeKubeconfig(
      schedulerKubeconfig,
      server,
      certs.caCert,
      certs.scheduler,
      'system:kube-scheduler',
    );

    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const etcd = startComponent(
      'etcd',
      binaries.etcd,
      [
        '--name=podwarden',
        `--data-dir=${dirs.etcd}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=podwarden=${peerUrl}`,
        // Throwaway data: fsync buys nothing and costs seconds on a busy disk.
        '--unsafe-no-fsync',
        '--log-level=warn',
      ],
      join(dirs.logs, 'etcd.log'),
    );
    components.push(etcd);
    await waitReady(etcd, 'its /health said true', deadline, async () => {
      const answer = await probeUrl(`${etcdUrl}/health`);
      return answer.status === 200 && answer.body.includes('"true"');
    });
    log(`etcd ready on ${etcdUrl} after ${Date.now() - started} ms`);

    const apiserverArgs = [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiserverPort}`,
      `--cert-dir=${dirs.pki}`,
      `--tls-cert-file=${certs.serving.cert}`,
      `--tls-private-key-file=${certs.serving.key}`,
      `--client-ca-file=${certs.caCert}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${certs.serviceAccountPublicKey}`,
      `--service-account-signing-key-file=${certs.serviceAccountKey}`,
      '--authorization-mode=RBAC',
      // No controller-manager mints ServiceAccount tokens, and KWOK nodes carry no conditions
      // the TaintNodesByCondition plugin should turn into taints; Priority resolves
      // priorityClassName, which preemption needs.
      '--disable-admission-plugins=ServiceAccount,TaintNodesByCondition',
      '--enable-admission-plugins=Priority',
      '--allow-privileged=true',
      '--profiling=false',
      '--v=1',
    ];
    const launchApiserver = async (until: number): Promise<Component> => {
      const component = startComponent(
        'kube-apiserver',
        binaries.kubeApiserver,
        apiserverArgs,
        join(dirs.logs, 'kube-apiserver.log'),
      );
      components.push(component);
      await waitReady(component, 'its /readyz said ok', until, async () => {
        const answer = await probeUrl(`${server}/readyz`, tls);
        return answer.status === 200 && answer.body.trim() === 'ok';
      });
      return component;
    };
    let apiserver = await launchApiserver(deadline);
    log(`kube-apiserver ready on ${server} after ${Date.now() - started} ms`);
    const stopApiserver = async (): Promise<void> => {
      await stopComponent(apiserver);
      components.splice(components.indexOf(apiserver), 1);
    };
    const startApiserver = async (): Promise<void> => {
      if (!apiserver.hasExited() && components.includes(apiserver)) return;
      apiserver = await launchApiserver(Date.now() + (options.startTimeoutMs ?? 120_000));
      log('kube-apiserver started again');
    };

    const scheduler = startComponent(
      'kube-scheduler',
      binaries.kubeScheduler,
      [
        `--kubeconfig=${schedulerKubeconfig}`,
        `--authentication-kubeconfig=${schedulerKubeconfig}`,
        `--authorization-kubeconfig=${schedulerKubeconfig}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${schedulerPort}`,
        `--tls-cert-file=${certs.serving.cert}`,
        `--tls-private-key-file=${certs.serving.key}`,
        `--cert-dir=${dirs.schedulerCerts}`,
        // One scheduler: a lease round-trip would only delay the first scheduling decision.
        '--leader-elect=false',
        '--profiling=false',
        '--v=1',
      ],
      join(dirs.logs, 'kube-scheduler.log'),
    );
    components.push(scheduler);

    const kwok = startComponent(
      'kwok',
      binaries.kwok,
      [
        `--kubeconfig=${kubeconfigPath}`,
        `--config=${join(controlPlaneScriptsDir, 'kwok-stages.yaml')}`,
        `--manage-nodes-with-annotation-selector=${fakeNodeAnnotation.key}=${fakeNodeAnnotation.value}`,
        // Loopback addresses, so nothing (e.g. a pod log request the API server forwards to the
        // "kubelet") ever sends traffic off this machine.
        '--cidr=127.224.0.0/12',
        '--node-ip=127.0.0.1',
      ],
      join(dirs.logs, 'kwok.log'),
    );
    components.push(kwok);

    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const scheduling = kc.makeApiClient(SchedulingV1Api);
    for (const priorityClass of priorityClassManifests()) {
      await createIfAbsent(() => scheduling.createPriorityClass({ body: priorityClass }));
    }
    const nodeNames = Array.from({ length: nodeCount }, (_, i) => `kwok-node-${i}`);
    for (const name of nodeNames) {
      await createIfAbsent(() => core.createNode({ body: fakeNodeManifest({ name }) }));
    }

    await waitReady(scheduler, 'its /readyz said ok', deadline, async () => {
      const answer = await probeUrl(`https://127.0.0.1:${schedulerPort}/readyz`, tls);
      return answer.status === 200 && answer.body.trim() === 'ok';
    });
    log(`kube-scheduler ready after ${Date.now() - started} ms`);
    await waitReady(kwok, `nodes ${nodeNames.join(', ')} to be Ready`, deadline, async () => {
      const nodes = await core.listNode();
      const ready = new Set(
        nodes.items
          .filter((node) => node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
          .map((node) => node.metadata?.name),
      );
      return nodeNames.every((name) => ready.has(name));
    });
    log(`control plane ready after ${Date.now() - started} ms (${server}, kubeconfig ${kubeconfigPath})`);

    return { kubeconfigPath, server, workDir, nodeNames, stop, stopApiserver, startApiserver };
  } catch (error) {
    // Keep the work dir: its logs explain the failure.
    await shutdown(false).catch(() => {});
    throw error;
  }
}

async function createIfAbsent(create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (error) {
    if (!(error instanceof ApiException && error.code === 409)) throw error;
  }
}
