// Helpers for tests of the `cluster` project, which share one real control plane started by
// test/setup/controlplane.ts. Each test file works in namespaces of its own.
import { randomBytes } from 'node:crypto';
import { ApiException, CoreV1Api, KubeConfig, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { afterAll, inject } from 'vitest';
import {
  type FakeNodeOptions,
  fakeNodeManifest,
  type TaskPodOptions,
  taskPodManifest,
} from '../../lib/devcluster/index.ts';

export {
  mainContainerName,
  type PodBehaviour,
  priorityClasses,
  sidecarContainerName,
  steeringAnnotations,
  steeringLabels,
  type TaskPodOptions,
} from '../../lib/devcluster/index.ts';

export function loadTestKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(inject('kubeconfigPath'));
  return kc;
}

/** The HTTP status of a failed API call, or undefined when it was not an API answer. */
export function apiStatus(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

// Cleanup of what this test file created; vitest loads this module once per test file.
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  const failures: unknown[] = [];
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup().catch((error: unknown) => failures.push(error));
  }
  if (failures.length > 0) throw new AggregateError(failures, 'cleaning up cluster test objects failed');
});

/**
 * Creates a uniquely named namespace, deleted after the test file. No controller-manager runs, so
 * a deleted namespace stays Terminating; its pods are force-deleted first so they are really gone.
 */
export async function createTestNamespace(kc: KubeConfig, prefix: string): Promise<string> {
  const base = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 50);
  if (base === '') throw new Error(`namespace prefix ${JSON.stringify(prefix)} has no usable characters`);
  const name = `${base}-${randomBytes(4).toString('hex')}`;
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({
    body: { metadata: { name, labels: { 'podwarden.test/namespace': 'true' } } },
  });
  cleanups.push(async () => {
    await core.deleteCollectionNamespacedPod({ namespace: name, gracePeriodSeconds: 0 });
    await core.deleteNamespace({ name }).catch((error: unknown) => {
      if (apiStatus(error) !== 404) throw error;
    });
  });
  return name;
}

/**
 * Creates a fake node for one test file (deleted after it), e.g. a small tainted node a
 * preemption test fills without competing with other files' pods.
 */
export async function createFakeNode(kc: KubeConfig, options: FakeNodeOptions): Promise<V1Node> {
  const core = kc.makeApiClient(CoreV1Api);
  const node = await core.createNode({ body: fakeNodeManifest(options) });
  cleanups.push(async () => {
    await core.deleteNode({ name: options.name }).catch((error: unknown) => {
      if (apiStatus(error) !== 404) throw error;
    });
  });
  return node;
}

/**
 * Polls `probe` until it returns a value other than undefined or false, and returns that value.
 * Errors the probe throws count as "not yet" (the last one is reported). The error after the
 * deadline names `what`.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let delay = 50;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const detail = lastError === undefined ? '' : ` (last error: ${describe(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 500);
  }
}

function describe(error: unknown): string {
  if (error instanceof ApiException) return `HTTP ${error.code}: ${JSON.stringify(error.body)}`;
  return error instanceof Error ? error.message : String(error);
}

/** A KubernetesPodOperator-like pod whose life KWOK plays out as `behaviour` says. */
export function taskPod(options: TaskPodOptions): V1Pod {
  return taskPodManifest(options);
}

/** Reads a pod, or undefined once the API answers 404. */
export async function readPodOrUndefined(
  kc: KubeConfig,
  namespace: string,
  name: string,
): Promise<V1Pod | undefined> {
  try {
    return await kc.makeApiClient(CoreV1Api).readNamespacedPod({ namespace, name });
  } catch (error) {
    if (apiStatus(error) === 404) return undefined;
    throw error;
  }
}
