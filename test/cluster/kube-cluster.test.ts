// The Cluster adapter against the real local control plane (etcd, kube-apiserver, kube-scheduler,
// KWOK): what it sends, how it reads the answers, and how it maps failures, RBAC denials included.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api, type V1Pod } from '@kubernetes/client-node';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { LAMBDA_BUNDLING } from '../../infra/bundling/options.ts';
import { parseClusterConnections } from '../../lib/cluster/connections.ts';
import { KubeCluster, type KubeClusterOptions, storyEventName } from '../../lib/cluster/kube-cluster.ts';
import type { Pod } from '../../lib/core/pod.ts';
import { ClusterError } from '../../lib/core/ports.ts';
import type { StoryEvent } from '../../lib/core/story.ts';
import { type KubeFaultProxy, startKubeFaultProxy } from '../support/kube-fault-proxy.ts';
import { createTestNamespace, loadTestKubeConfig, taskPod, waitFor } from './support.ts';

let admin: KubeConfig;
let core: CoreV1Api;
let namespace: string;
let cluster: KubeCluster;

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

beforeAll(async () => {
  admin = loadTestKubeConfig();
  core = admin.makeApiClient(CoreV1Api);
  namespace = await createTestNamespace(admin, 'kube-cluster');
  const kubeconfigPath = inject('kubeconfigPath');
  // Two names for the same local server: the adapter keys everything by the name a call gives.
  cluster = new KubeCluster(
    parseClusterConnections({
      local: { kind: 'kubeconfig', path: kubeconfigPath },
      mirror: { kind: 'kubeconfig', path: kubeconfigPath, context: 'podwarden-local' },
    }),
  );
});

/** This process's established TCP connections to `port` (Linux: its socket fds, matched in /proc). */
function connectionsOfThisProcessTo(port: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith('socket:[')) inodes.add(target.slice('socket:['.length, -1));
    } catch {
      // closed meanwhile
    }
  }
  let count = 0;
  for (const table of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const remotePort = Number.parseInt(fields[2]!.split(':')[1]!, 16);
      // State 01 is ESTABLISHED; field 9 is the socket's inode.
      if (remotePort === port && fields[3] === '01' && inodes.has(fields[9]!)) count++;
    }
  }
  return count;
}

/** The harness builds client-node models; the adapter takes the wire form. */
function wire(pod: V1Pod): Pod {
  return JSON.parse(JSON.stringify(pod)) as Pod;
}

function runningPod(name: string, labels: Record<string, string> = {}): Pod {
  return wire(taskPod({ name, namespace, behaviour: { kind: 'run' }, labels }));
}

function findDates(value: unknown, path = '$'): string[] {
  if (value instanceof Date) return [path];
  if (Array.isArray(value)) return value.flatMap((item, i) => findDates(item, `${path}[${i}]`));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) => findDates(item, `${path}.${key}`));
  }
  return [];
}

async function created(name: string, labels?: Record<string, string>): Promise<Pod> {
  const result = await cluster.createPod('local', runningPod(name, labels));
  expect(result.outcome).toBe('created');
  return result.pod!;
}

async function gone(name: string): Promise<void> {
  await waitFor(
    `pod ${name} to be gone`,
    async () => (await cluster.getPod('local', namespace, name)) === undefined,
  );
}

describe('pods', () => {
  it('creates and reads a pod in the API server wire form, under either cluster name', async () => {
    const pod = await created('alpha');
    expect(pod.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(pod.metadata.creationTimestamp).toMatch(RFC3339);
    expect(findDates(pod)).toEqual([]);

    const read = await cluster.getPod('local', namespace, 'alpha');
    expect(read).toMatchObject({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'alpha', uid: pod.metadata.uid },
    });
    expect((await cluster.getPod('mirror', namespace, 'alpha'))?.metadata.uid).toBe(pod.metadata.uid);

    const running = await waitFor('pod alpha running', async () => {
      const current = await cluster.getPod('local', namespace, 'alpha');
      return current?.status?.phase === 'Running' ? current : undefined;
    });
    expect(running.status?.startTime).toMatch(RFC3339);
    expect(running.status?.containerStatuses?.[0]?.state?.running?.startedAt).toMatch(RFC3339);
    expect(findDates(running)).toEqual([]);
  });

  it('answers undefined for a pod that does not exist', async () => {
    expect(await cluster.getPod('local', namespace, 'absent')).toBeUndefined();
  });

  it('answers exists when the name is taken (409 AlreadyExists)', async () => {
    const first = await created('dup');
    const second = await cluster.createPod('local', runningPod('dup'));
    expect(second).toEqual({ outcome: 'exists' });
    expect((await cluster.getPod('local', namespace, 'dup'))?.metadata.uid).toBe(first.metadata.uid);
  });

  it('deletes only the pod with the given uid, and a repeated delete answers not-found', async () => {
    const pod = await created('victim');
    const uid = pod.metadata.uid!;
    expect(
      await cluster.deletePod('local', namespace, 'victim', { uid: randomUUID(), gracePeriodSeconds: 0 }),
    ).toBe('uid-mismatch');
    expect((await cluster.getPod('local', namespace, 'victim'))?.metadata.deletionTimestamp).toBeUndefined();

    expect(await cluster.deletePod('local', namespace, 'victim', { uid, gracePeriodSeconds: 0 })).toBe(
      'deleted',
    );
    await gone('victim');
    expect(await cluster.deletePod('local', namespace, 'victim', { uid, gracePeriodSeconds: 0 })).toBe(
      'not-found',
    );
  });

  it('deletes a pod only at the resourceVersion given, and says which precondition failed', async () => {
    // On a node KWOK does not manage, so that nothing but this test changes the pod.
    const manifest = wire(
      taskPod({ name: 'as-read', namespace, behaviour: { kind: 'run' }, nodeName: 'no-kubelet' }),
    );
    const read = (await cluster.createPod('local', manifest)).pod!;
    const uid = read.metadata.uid!;
    const stale = read.metadata.resourceVersion!;
    await core.patchNamespacedPod({
      namespace,
      name: 'as-read',
      body: [{ op: 'add', path: '/metadata/annotations', value: { touched: 'yes' } }],
    });
    expect(
      await cluster.deletePod('local', namespace, 'as-read', {
        uid,
        gracePeriodSeconds: 0,
        resourceVersion: stale,
      }),
    ).toBe('changed');
    const now = await cluster.getPod('local', namespace, 'as-read');
    expect(now?.metadata.deletionTimestamp).toBeUndefined();
    expect(
      await cluster.deletePod('local', namespace, 'as-read', {
        uid: randomUUID(),
        gracePeriodSeconds: 0,
        resourceVersion: now!.metadata.resourceVersion!,
      }),
    ).toBe('uid-mismatch');
    expect(
      await cluster.deletePod('local', namespace, 'as-read', {
        uid,
        gracePeriodSeconds: 0,
        resourceVersion: now!.metadata.resourceVersion!,
      }),
    ).toBe('deleted');
    await gone('as-read');
    expect(
      await cluster.deletePod('local', namespace, 'as-read', {
        uid,
        gracePeriodSeconds: 0,
        resourceVersion: stale,
      }),
    ).toBe('not-found');
  });

  it('passes the grace period, so a graceful delete leaves the pod terminating', async () => {
    // Bound to a node KWOK does not manage: no kubelet finishes the deletion, so it stays visible.
    const manifest = wire(
      taskPod({ name: 'graceful', namespace, behaviour: { kind: 'run' }, nodeName: 'no-kubelet' }),
    );
    const { pod } = await cluster.createPod('local', manifest);
    const uid = pod!.metadata.uid!;
    expect(await cluster.deletePod('local', namespace, 'graceful', { uid, gracePeriodSeconds: 45 })).toBe(
      'deleted',
    );
    const terminating = await cluster.getPod('local', namespace, 'graceful');
    expect(terminating?.metadata.deletionTimestamp).toMatch(RFC3339);
    expect(terminating?.metadata.deletionGracePeriodSeconds).toBe(45);
    // Deleting a terminating pod again is still a delete; grace period 0 finishes it at once.
    expect(await cluster.deletePod('local', namespace, 'graceful', { uid, gracePeriodSeconds: 0 })).toBe(
      'deleted',
    );
    await gone('graceful');
  });
});

describe('lists', () => {
  let proxy: KubeFaultProxy;
  let paged: KubeCluster;
  const run = randomUUID().slice(0, 8);
  const selected = { 'podwarden.test/set': 'page', 'podwarden.test/run': run };
  const names = ['page-0', 'page-1', 'page-2', 'page-3', 'page-4'];

  beforeAll(async () => {
    proxy = await startKubeFaultProxy(admin);
    paged = new KubeCluster(async () => viaProxy(proxy), { pageSize: 2 });
    for (const name of names) await created(name, selected);
    await created('page-other', { 'podwarden.test/set': 'other', 'podwarden.test/run': run });
  });
  afterAll(() => proxy?.close());

  it('follows continue tokens until the last page', async () => {
    proxy.reset();
    const pods = await paged.listPods('paged', { namespace, labelSelector: 'podwarden.test/set=page' });
    expect(pods.map((p) => p.metadata.name).sort()).toEqual(names);
    expect(pods.every((p) => p.kind === 'Pod' && p.apiVersion === 'v1')).toBe(true);
    expect(pods.flatMap((p) => findDates(p))).toEqual([]);
    const lists = proxy.seen.filter(
      (r) => r.method === 'GET' && r.path.startsWith(`/api/v1/namespaces/${namespace}/pods?`),
    );
    expect(lists.every((r) => new URL(r.path, 'http://x').searchParams.get('limit') === '2')).toBe(true);
    const continued = lists.filter((r) => new URL(r.path, 'http://x').searchParams.has('continue'));
    expect(lists.length).toBe(3); // 2 + 2 + 1
    expect(continued.length).toBe(2);
  });

  it('lists across all namespaces and by field selector', async () => {
    const everywhere = await paged.listPods('paged', { labelSelector: `podwarden.test/run=${run}` });
    expect(everywhere.map((p) => p.metadata.name).sort()).toEqual([...names, 'page-other'].sort());
    const one = await cluster.listPods('local', { namespace, fieldSelector: 'metadata.name=page-3' });
    expect(one.map((p) => p.metadata.name)).toEqual(['page-3']);
    expect(await cluster.listPods('local', { namespace, labelSelector: 'podwarden.test/set=none' })).toEqual(
      [],
    );
  });

  it('retries a throttled page and still returns every pod', async () => {
    proxy.reset();
    proxy.inject({
      fault: { kind: 'status', status: 429, retryAfter: '1' },
      times: 1,
      match: ({ path }) => path.includes('continue='),
    });
    const sleeps: number[] = [];
    const throttled = new KubeCluster(async () => viaProxy(proxy), { pageSize: 2, sleep: record(sleeps) });
    const pods = await throttled.listPods('paged', { namespace, labelSelector: 'podwarden.test/set=page' });
    expect(pods.map((p) => p.metadata.name).sort()).toEqual(names);
    expect(sleeps).toEqual([1000]);
    expect(proxy.seen.map((r) => r.status)).toEqual([200, 429, 200, 200]);
  });
});

describe('events', () => {
  it('lists events by field selector, the scheduler’s own included', async () => {
    const pod = await created('evt');
    const involvedObject = { kind: 'Pod', apiVersion: 'v1', name: 'evt', namespace, uid: pod.metadata.uid };
    const at = new Date();
    for (const [name, reason] of [
      ['evt.preempted', 'Preempted'],
      ['evt.other', 'Pulled'],
    ] as const) {
      await core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { name, namespace },
          involvedObject,
          reason,
          message: `${reason} by podwarden-test`,
          type: 'Warning',
          count: 2,
          firstTimestamp: at,
          lastTimestamp: at,
          source: { component: 'podwarden-test' },
        },
      });
    }
    const preempted = await cluster.listEvents(
      'local',
      namespace,
      'involvedObject.name=evt,reason=Preempted',
    );
    expect(preempted).toEqual([
      {
        namespace,
        name: 'evt.preempted',
        uid: expect.stringMatching(/^[0-9a-f-]{36}$/),
        reason: 'Preempted',
        message: 'Preempted by podwarden-test',
        type: 'Warning',
        involvedObject: { kind: 'Pod', name: 'evt', namespace, uid: pod.metadata.uid },
        count: 2,
        firstTimestamp: expect.stringMatching(RFC3339),
        lastTimestamp: expect.stringMatching(RFC3339),
      },
    ]);
    expect(await cluster.listEvents('local', namespace, 'involvedObject.name=nobody')).toEqual([]);

    // Written by kube-scheduler through events.k8s.io/v1, read back through core/v1.
    const scheduled = await waitFor('the Scheduled event of pod evt', async () => {
      const events = await cluster.listEvents('local', namespace, 'involvedObject.name=evt,reason=Scheduled');
      return events.length > 0 ? events : undefined;
    });
    expect(scheduled[0]?.message).toMatch(/Successfully assigned .*\/evt to /);
    expect(scheduled[0]?.involvedObject.uid).toBe(pod.metadata.uid);
  });
});

describe('the events Podwarden writes on a pod', () => {
  it('writes a story event once per key, read back with its annotations as kubectl shows it', async () => {
    const pod = await created('story');
    const event: StoryEvent = {
      namespace,
      podName: 'story',
      podUid: pod.metadata.uid ?? '',
      reason: 'RecreatePending',
      type: 'Normal',
      message: 'pod was disrupted; re-creating it as attempt 2',
      at: Date.UTC(2026, 10, 30, 12, 0, 0, 123),
      annotations: { 'podwarden.io/due-at': '2026-11-30T12:00:02.123Z', 'podwarden.io/next-attempt': '2' },
      key: `recreate-pending/${pod.metadata.uid}/2/gone`,
    };
    expect(await cluster.createEvent('local', event, 'test:kube-cluster')).toBe('created');
    expect(await cluster.createEvent('local', { ...event, at: event.at + 5_000 }, 'test:kube-cluster')).toBe(
      'exists',
    );
    const { items } = await core.listNamespacedEvent({
      namespace,
      fieldSelector: 'involvedObject.name=story',
    });
    const ours = items.filter((e) => e.source?.component === 'podwarden');
    expect(ours).toHaveLength(1);
    expect(ours[0]).toMatchObject({
      metadata: { name: storyEventName(event), annotations: event.annotations },
      involvedObject: { kind: 'Pod', name: 'story', namespace, uid: pod.metadata.uid },
      reason: 'RecreatePending',
      type: 'Normal',
      message: event.message,
      reportingComponent: 'podwarden.io/podwarden',
      reportingInstance: 'test:kube-cluster',
      count: 1,
    });
    expect(ours[0]?.firstTimestamp?.toISOString()).toBe('2026-11-30T12:00:00.000Z');
  });
});

describe('credentials and RBAC', () => {
  let server: string;
  let caData: string;
  beforeAll(async () => {
    server = admin.getCurrentCluster()!.server;
    caData = admin.getCurrentCluster()!.caData!;
    await created('guarded');
  });

  /** A ServiceAccount token from the TokenRequest API: a real identity the real RBAC judges. */
  async function serviceAccountToken(name: string): Promise<string> {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
    const request = await core.createNamespacedServiceAccountToken({
      namespace,
      name,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = request.status?.token;
    if (!token) throw new Error(`TokenRequest for ServiceAccount ${name} returned no token`);
    return token;
  }

  function tokenConfig(token: string): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser(
      { name: 'restricted', server, caData, skipTLSVerify: false },
      { name: 'sa', token },
    );
    return kc;
  }

  it('makes a 403 fatal, naming the verb, resource, namespace and missing rule', async () => {
    const token = await serviceAccountToken('no-rbac');
    const restricted = new KubeCluster(async () => tokenConfig(token), { attempts: 1 });
    const denied = await restricted.getPod('restricted', namespace, 'guarded').catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(ClusterError);
    const error = denied as ClusterError;
    expect(error.kind).toBe('fatal');
    expect(error.status).toBe(403);
    expect(error.message).toContain(`get pods "guarded" in namespace "${namespace}" on cluster "restricted"`);
    expect(error.message).toContain(
      'RBAC lacks the rule {apiGroups: [""], resources: ["pods"], verbs: ["get"]}',
    );
    expect(error.message).toContain(`system:serviceaccount:${namespace}:no-rbac`);

    const clusterWide = await restricted.listPods('restricted', {}).catch((e: unknown) => e as ClusterError);
    expect(clusterWide).toMatchObject({ kind: 'fatal', status: 403 });
    expect((clusterWide as ClusterError).message).toMatch(/list pods in all namespaces.*ClusterRoleBinding/);
    // A later request of the same cluster reuses the pooled connection, and still sends the token.
    expect((clusterWide as ClusterError).message).toContain(`system:serviceaccount:${namespace}:no-rbac`);
  });

  it('authenticates an eks connection with the token provider, and names what its role lacks', async () => {
    const token = await serviceAccountToken('reader');
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: 'pod-reader' },
        rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'pod-reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace }],
      },
    });
    // The eks kind end to end except STS, which has no local engine: the provider hands out a
    // ServiceAccount token where EKS would get a presigned-URL token (tested in test/unit).
    let tokenRequests = 0;
    const eks = new KubeCluster(
      parseClusterConnections({
        prod: { kind: 'eks', clusterName: 'prod', endpoint: server, caData, region: 'eu-west-1' },
      }),
      {
        attempts: 1,
        connectionDeps: {
          eksTokenProvider: () => ({
            getToken: async () => {
              tokenRequests++;
              return { token, expiresAt: Date.now() + 600_000 };
            },
          }),
        },
      },
    );
    // RBAC bindings take effect through the authorizer's informer: wait until the grant is seen.
    const pod = await waitFor('the pod-reader binding to apply', () =>
      eks.getPod('prod', namespace, 'guarded'),
    );
    expect(pod.metadata.name).toBe('guarded');
    expect(tokenRequests).toBeGreaterThan(0);

    const denied = await eks
      .deletePod('prod', namespace, 'guarded', { uid: pod.metadata.uid!, gracePeriodSeconds: 0 })
      .catch((e: unknown) => e as ClusterError);
    expect(denied).toMatchObject({ kind: 'fatal', status: 403 });
    expect((denied as ClusterError).message).toContain('verbs: ["delete"]');
    expect((denied as ClusterError).message).toContain(`a Role in namespace "${namespace}"`);
    expect(await cluster.getPod('local', namespace, 'guarded')).toBeDefined();
  });

  it("closes the connection of an exec plugin's request once it is answered", async () => {
    // An exec user (here: a plugin that hands out the admin's client certificate, as some do) gets
    // a dispatcher per request, since its certificate may rotate; none may outlive its request.
    const user = admin.getCurrentUser();
    const pem = (base64: string | undefined) => Buffer.from(base64 ?? '', 'base64').toString('utf8');
    const credential = {
      apiVersion: 'client.authentication.k8s.io/v1',
      kind: 'ExecCredential',
      status: { clientCertificateData: pem(user?.certData), clientKeyData: pem(user?.keyData) },
    };
    const execConfig = new KubeConfig();
    execConfig.loadFromOptions({
      clusters: [admin.getCurrentCluster()!],
      users: [
        {
          name: 'exec-user',
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1',
            command: process.execPath,
            args: ['-e', `process.stdout.write(${JSON.stringify(JSON.stringify(credential))})`],
            interactiveMode: 'Never',
          },
        },
      ],
      contexts: [{ name: 'exec', cluster: admin.getCurrentCluster()!.name, user: 'exec-user' }],
      currentContext: 'exec',
    });
    const viaExec = new KubeCluster(async () => execConfig);
    const port = Number(new URL(admin.getCurrentCluster()!.server).port);
    const sockets = () => connectionsOfThisProcessTo(port);
    await created('exec-read');
    const before = sockets();
    for (let read = 0; read < 8; read++)
      expect(await viaExec.getPod('local', namespace, 'exec-read')).toBeDefined();
    // Kept alive, each would stay open for undici's idle timeout (4 s); closed, they go at once.
    await waitFor("the exec requests' connections to close", async () => sockets() <= before, 2_000);
    await viaExec.close();
  });

  it('rejects an unknown cluster name', async () => {
    await expect(cluster.getPod('elsewhere', namespace, 'guarded')).rejects.toMatchObject({
      kind: 'fatal',
      message: 'unknown cluster "elsewhere" (configured: local, mirror)',
    });
  });
});

describe('retries through the fault proxy', () => {
  let proxy: KubeFaultProxy;
  beforeAll(async () => {
    proxy = await startKubeFaultProxy(admin);
    await created('target');
  });
  afterAll(() => proxy?.close());

  function proxied(sleeps: number[], options: KubeClusterOptions = {}) {
    return new KubeCluster(async () => viaProxy(proxy), {
      attempts: 4,
      baseDelayMs: 100,
      maxDelayMs: 5000,
      random: () => 1,
      sleep: record(sleeps),
      ...options,
    });
  }
  const podPath = (name: string) => `/api/v1/namespaces/${namespace}/pods/${name}`;

  it('waits out 429 Retry-After and succeeds', async () => {
    proxy.reset();
    proxy.inject({ fault: { kind: 'status', status: 429, retryAfter: '1' }, times: 2 });
    const sleeps: number[] = [];
    const notices: string[] = [];
    const adapter = proxied(sleeps, { onRetry: (n) => notices.push(`${n.target.verb} ${n.error.status}`) });
    expect((await adapter.getPod('proxied', namespace, 'target'))?.metadata.name).toBe('target');
    expect(sleeps).toEqual([1000, 1000]);
    expect(notices).toEqual(['get 429', 'get 429']);
    expect(proxy.seen.map((r) => [r.path, r.status])).toEqual([
      [podPath('target'), 429],
      [podPath('target'), 429],
      [podPath('target'), 200],
    ]);
  });

  it('backs off exponentially on 503 and surfaces retryable after the last attempt', async () => {
    proxy.reset();
    proxy.inject({ fault: { kind: 'status', status: 503 }, times: 10 });
    const sleeps: number[] = [];
    const failure = await proxied(sleeps, { attempts: 3 })
      .getPod('proxied', namespace, 'target')
      .catch((e: unknown) => e as ClusterError);
    expect(failure).toMatchObject({ kind: 'retryable', status: 503 });
    expect((failure as ClusterError).message).toMatch(
      /HTTP 503\): injected by kube-fault-proxy .*after 3 attempts/,
    );
    expect(sleeps).toEqual([100, 200]);
    expect(proxy.seen).toHaveLength(3);
  });

  it('surfaces a Retry-After beyond the longest wait at once, for the caller to schedule', async () => {
    proxy.reset();
    proxy.inject({ fault: { kind: 'status', status: 429, retryAfter: '120' }, times: 1 });
    const sleeps: number[] = [];
    const failure = await proxied(sleeps)
      .getPod('proxied', namespace, 'target')
      .catch((e: unknown) => e);
    expect(failure).toMatchObject({ kind: 'retryable', status: 429, retryAfterMs: 120_000 });
    expect(sleeps).toEqual([]);
    expect(proxy.seen).toHaveLength(1);
  });

  it('retries a dropped connection', async () => {
    proxy.reset();
    proxy.inject({ fault: { kind: 'reset' }, times: 1 });
    const sleeps: number[] = [];
    expect((await proxied(sleeps).getPod('proxied', namespace, 'target'))?.metadata.name).toBe('target');
    expect(sleeps).toEqual([100]);
    expect(proxy.seen.map((r) => r.fault)).toEqual(['reset', undefined]);
  });

  it('converges when a create succeeded but its answer was lost: the retry answers exists', async () => {
    proxy.reset();
    proxy.inject({
      fault: { kind: 'status-after-forward', status: 503 },
      times: 1,
      match: (r) => r.method === 'POST',
    });
    const result = await proxied([]).createPod('proxied', runningPod('lost-create'));
    expect(result).toEqual({ outcome: 'exists' });
    expect(await cluster.getPod('local', namespace, 'lost-create')).toBeDefined();
    expect(proxy.seen.map((r) => r.status)).toEqual([503, 409]);
  });

  it('converges when a delete succeeded but its answer was lost: the retry answers not-found', async () => {
    const pod = await created('lost-delete');
    proxy.reset();
    proxy.inject({
      fault: { kind: 'status-after-forward', status: 503 },
      times: 1,
      match: (r) => r.method === 'DELETE',
    });
    const outcome = await proxied([]).deletePod('proxied', namespace, 'lost-delete', {
      uid: pod.metadata.uid!,
      gracePeriodSeconds: 0,
    });
    expect(outcome).toBe('not-found');
    expect(proxy.seen.map((r) => r.status)).toEqual([503, 404]);
  });
});

/** A kubeconfig for the fault proxy, which adds the admin identity upstream as `kubectl proxy` does. */
function viaProxy(proxy: KubeFaultProxy): KubeConfig {
  const kc = new KubeConfig();
  // client-node takes an http:// server only with skipTLSVerify; this loopback hop has no TLS.
  kc.loadFromClusterAndUser(
    { name: 'proxied', server: proxy.url, skipTLSVerify: true },
    { name: 'anonymous' },
  );
  return kc;
}

function record(sleeps: number[]): (ms: number) => Promise<void> {
  return async (ms) => {
    sleeps.push(ms);
  };
}

describe('bundled as the functions are', () => {
  it("reads, creates and deletes through the bundle's own undici and http (the aliases in infra/bundling)", async () => {
    // The functions carry a slimmed undici (infra/bundling/undici.mjs) and take node:http and
    // node:https through shims (node-http.cjs, node-https.cjs); the adapter must work with what those
    // files give, not only with the full package and the built-ins the tests load.
    const dir = await mkdtemp(join(tmpdir(), 'podwarden-kube-bundle-'));
    try {
      const outfile = join(dir, 'probe.mjs');
      const adapter = fileURLToPath(new URL('../../lib/cluster/kube-cluster.ts', import.meta.url));
      const connections = fileURLToPath(new URL('../../lib/cluster/connections.ts', import.meta.url));
      await build({
        stdin: {
          contents: `
            import { KubeCluster } from ${JSON.stringify(adapter)};
            import { parseClusterConnections } from ${JSON.stringify(connections)};
            const [path, namespace, pod] = JSON.parse(process.argv[2]);
            const cluster = new KubeCluster(parseClusterConnections({ local: { kind: 'kubeconfig', path } }));
            const created = await cluster.createPod('local', pod);
            const read = await cluster.getPod('local', namespace, pod.metadata.name);
            const refused = await cluster.deletePod('local', namespace, pod.metadata.name, { uid: 'not-its-uid', gracePeriodSeconds: 0 });
            const deleted = await cluster.deletePod('local', namespace, pod.metadata.name, { uid: read.metadata.uid, gracePeriodSeconds: 0 });
            await cluster.close();
            console.log('RESULT ' + JSON.stringify({ created: created.outcome, uid: created.pod?.metadata.uid, read: read.metadata.uid, refused, deleted }));
          `,
          resolveDir: dir,
          loader: 'ts',
        },
        outfile,
        bundle: true,
        platform: 'node',
        ...LAMBDA_BUNDLING,
        mainFields: [...LAMBDA_BUNDLING.mainFields],
        banner: { js: LAMBDA_BUNDLING.banner },
        nodePaths: [fileURLToPath(new URL('../../node_modules', import.meta.url))],
        logLevel: 'error',
      });
      const node24 = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
      const args = [inject('kubeconfigPath'), namespace, runningPod('bundled')];
      const run = spawnSync(node24, [outfile, JSON.stringify(args)], { encoding: 'utf8', timeout: 60_000 });
      expect(run.status, run.stderr.slice(-2_000)).toBe(0);
      const line = run.stdout.split('\n').find((text) => text.startsWith('RESULT '));
      const result = JSON.parse(line?.slice('RESULT '.length) ?? '{}');
      expect(result).toMatchObject({ created: 'created', refused: 'uid-mismatch', deleted: 'deleted' });
      expect(result.read).toBe(result.uid);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
