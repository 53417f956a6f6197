// The bridge's pods as `podwarden manifests` prints them meet the restricted Pod Security Standard,
// checked by the API server's own PodSecurity admission plugin (on by default in kube-apiserver; the
// local control plane leaves it on). PodSecurity enforces on pods, not on Deployments, and no
// controller-manager runs here to turn the Deployment into pods: the test creates the pod the
// ReplicaSet controller would, from the Deployment's template, in the printed Namespace.
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import {
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as runManifests } from '../../bin/commands/manifests.ts';
import { apiStatus, loadTestKubeConfig } from './support.ts';

let kc: KubeConfig;
let core: CoreV1Api;
const namespace = `podwarden-pss-${randomBytes(4).toString('hex')}`;
let printed: KubernetesObject[];

beforeAll(async () => {
  kc = loadTestKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  const stdout = new PassThrough();
  const chunks: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  const code = await runManifests(
    [
      ...['--cluster', 'pss', '--bus', 'podwarden', '--region', 'eu-west-1', '--format', 'json'],
      ...['--role-arn', 'arn:aws:iam::123456789012:role/podwarden-bridge', '--namespace', namespace],
      // Watch rights in that namespace only: no cluster-scoped objects for other files to trip over.
      ...['--namespaces', namespace],
    ],
    { stdin: new PassThrough(), stdout, stderr: new PassThrough() },
  );
  expect(code).toBe(0);
  printed = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { items: KubernetesObject[] }).items;
  expect(printed.filter((object) => !object.metadata?.namespace).map((object) => object.kind)).toEqual([
    'Namespace',
  ]);
  const client = KubernetesObjectApi.makeApiClient(kc);
  for (const object of printed) await client.create(object);
});

afterAll(async () => {
  // No controller-manager: pods are removed by hand, the namespace stays Terminating.
  await core?.deleteCollectionNamespacedPod({ namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
  await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
});

function podFromTemplate(name: string, edit: (pod: V1Pod) => void = () => undefined): V1Pod {
  const deployment = printed.find((object) => object.kind === 'Deployment') as V1Deployment;
  const template = structuredClone(deployment.spec!.template);
  const pod: V1Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...template.metadata, name, namespace },
    spec: template.spec!,
  };
  edit(pod);
  return pod;
}

/** The API server's message when it refuses `pod` (403); fails the test when it admits it. */
async function refusal(pod: V1Pod): Promise<string> {
  try {
    await core.createNamespacedPod({ namespace, body: pod });
  } catch (error) {
    expect(apiStatus(error)).toBe(403);
    const body = (error as { body?: unknown }).body;
    return (JSON.parse(String(body)) as { message: string }).message;
  }
  throw new Error(`pod ${pod.metadata?.name} was admitted`);
}

describe('the printed bridge Deployment under the restricted Pod Security Standard', () => {
  it('lives in a Namespace that enforces restricted', async () => {
    const applied = await core.readNamespace({ name: namespace });
    expect(applied.metadata?.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it('has its pods admitted there', async () => {
    const created = await core.createNamespacedPod({
      namespace,
      body: podFromTemplate('bridge-from-template'),
    });
    expect(created.metadata?.uid).toBeTruthy();
    const container = created.spec?.containers[0];
    expect(created.spec?.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container?.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
  });

  // The controls: the same pod with one setting loosened is refused, so the admission above means
  // something, and each setting is one the standard requires.
  it.each([
    [
      'allowPrivilegeEscalation',
      (pod: V1Pod) => {
        delete pod.spec!.containers[0]!.securityContext!.allowPrivilegeEscalation;
      },
    ],
    [
      'capabilities',
      (pod: V1Pod) => {
        delete pod.spec!.containers[0]!.securityContext!.capabilities;
      },
    ],
    [
      'runAsNonRoot',
      (pod: V1Pod) => {
        delete pod.spec!.securityContext!.runAsNonRoot;
      },
    ],
    [
      'seccompProfile',
      (pod: V1Pod) => {
        delete pod.spec!.securityContext!.seccompProfile;
      },
    ],
  ])('refuses the pod without %s', async (setting, loosen) => {
    const message = await refusal(podFromTemplate(`loosened-${setting.toLowerCase()}`, loosen));
    expect(message).toContain('violates PodSecurity "restricted:latest"');
    expect(message).toContain(setting);
  });
});
