// The bridge's ResourceWatcher against the real local API server: resuming from where it stopped,
// and re-listing after 410 Gone without losing a change.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type KubeApi, kubeApi, type Query } from '../../lib/bridge/kube.ts';
import { createLogger } from '../../lib/bridge/logger.ts';
import { BridgeMetrics, seriesValue, totalOf } from '../../lib/bridge/metrics.ts';
import type { ChangeKind } from '../../lib/bridge/relist.ts';
import { ResourceWatcher, type Via, type WatcherCheckpoint } from '../../lib/bridge/watcher.ts';
import type { Pod } from '../../lib/core/pod.ts';
import { createTestNamespace, loadTestKubeConfig, readPodOrUndefined, taskPod, waitFor } from './support.ts';

let kc: KubeConfig;
let core: CoreV1Api;
const watchers: Array<ResourceWatcher<Pod>> = [];

beforeAll(() => {
  kc = loadTestKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
});

afterEach(async () => {
  await Promise.all(watchers.splice(0).map((watcher) => watcher.stop()));
});

interface Seen {
  change: ChangeKind;
  name: string;
  version: number;
  via: Via;
}

function watch(options: { api: KubeApi; namespace: string; checkpoint?: WatcherCheckpoint<Pod> }) {
  const seen: Seen[] = [];
  const metrics = new BridgeMetrics();
  const watcher = new ResourceWatcher<Pod>({
    api: options.api,
    target: { resource: 'pods', namespace: options.namespace, labelSelector: 'podwarden.io/managed=true' },
    log: createLogger({ sink: { write: () => undefined } }),
    metrics,
    keepObjects: true,
    onChange: (change, pod, via) =>
      seen.push({ change, name: pod.metadata.name!, version: Number(pod.metadata.resourceVersion), via }),
    backoff: { baseMs: 100, maxMs: 1_000 },
    ...(options.checkpoint ? { checkpoint: options.checkpoint } : {}),
  });
  watchers.push(watcher);
  return { watcher, seen, metrics };
}

/**
 * FAULT INJECTOR over the real API: the first watch from `staleVersion` is answered the way the API
 * server answers a watch whose resourceVersion has been compacted away (an ERROR event carrying a
 * 410 Expired Status, then the end of the stream). Needed because a fresh control plane's watch cache
 * holds every event since it started, so no resourceVersion is too old on demand within a test;
 * the re-list and everything after it go to the real API server.
 */
function expireWatchFrom(api: KubeApi, staleVersion: string): KubeApi & { injected: () => boolean } {
  let injected = false;
  return {
    injected: () => injected,
    request: (method, path, options) => api.request(method, path, options),
    watch: async (path: string, query: Query, onEvent, onDone) => {
      if (injected || query.resourceVersion !== staleVersion) return api.watch(path, query, onEvent, onDone);
      injected = true;
      setImmediate(() => {
        onEvent('ERROR', {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: `too old resource version: ${staleVersion}`,
          reason: 'Expired',
          code: 410,
        });
        onDone(null);
      });
      return { abort: () => undefined };
    },
  };
}

function managedPod(name: string, namespace: string) {
  return taskPod({
    name,
    namespace,
    behaviour: { kind: 'run' },
    labels: { 'podwarden.io/managed': 'true', 'podwarden.io/task': name },
  });
}

/** Runs a watcher until it has seen pods a and b, stops it, then changes things while nobody watches. */
async function changesWhileAway(namespace: string) {
  const first = watch({ api: kubeApi(kc), namespace });
  await first.watcher.start();
  await core.createNamespacedPod({ namespace, body: managedPod('a', namespace) });
  await core.createNamespacedPod({ namespace, body: managedPod('b', namespace) });
  await waitFor('a and b to be seen', async () =>
    ['a', 'b'].every((name) => first.seen.some((seen) => seen.name === name)),
  );
  await first.watcher.stop();
  const checkpoint = first.watcher.checkpoint();

  await core.createNamespacedPod({ namespace, body: managedPod('c', namespace) });
  const patched = await core.patchNamespacedPod({
    namespace,
    name: 'a',
    body: [{ op: 'add', path: '/metadata/labels/changed', value: 'while-away' }],
  });
  await core.deleteNamespacedPod({ namespace, name: 'b', gracePeriodSeconds: 0 });
  await waitFor('b to be gone', async () => (await readPodOrUndefined(kc, namespace, 'b')) === undefined);
  return { checkpoint, patchedVersion: Number(patched.metadata?.resourceVersion) };
}

describe('ResourceWatcher', () => {
  it('resumes from its last resourceVersion and sees every change made while it was stopped, without a re-list', async () => {
    const namespace = await createTestNamespace(kc, 'bridge-resume');
    const { checkpoint, patchedVersion } = await changesWhileAway(namespace);
    const second = watch({ api: kubeApi(kc), namespace, checkpoint });
    await second.watcher.start();
    await waitFor('the changes made while away', async () => {
      const { seen } = second;
      return (
        seen.some((s) => s.name === 'c' && s.change === 'added') &&
        seen.some((s) => s.name === 'a' && s.version >= patchedVersion) &&
        seen.some((s) => s.name === 'b' && s.change === 'deleted')
      );
    });
    expect(second.seen.every((s) => s.via === 'watch')).toBe(true);
    expect(second.seen.some((s) => s.name === 'a' && s.version === patchedVersion)).toBe(true);
    expect(await totalOf(second.metrics.relists)).toBe(0);
  });

  it('re-lists on 410 Gone and reports what changed while away: deletions, modifications, additions', async () => {
    const namespace = await createTestNamespace(kc, 'bridge-gone');
    const { checkpoint, patchedVersion } = await changesWhileAway(namespace);
    const api = expireWatchFrom(kubeApi(kc), checkpoint.resourceVersion!);
    const second = watch({ api, namespace, checkpoint });
    await second.watcher.start();
    await waitFor('the re-list', async () => second.seen.some((s) => s.via === 'relist'));
    expect(api.injected()).toBe(true);

    const relisted = second.seen.filter((s) => s.via === 'relist');
    expect(relisted.map((s) => [s.change, s.name])).toEqual([
      ['deleted', 'b'],
      ['modified', 'a'],
      ['added', 'c'],
    ]);
    expect(relisted[1]!.version).toBeGreaterThanOrEqual(patchedVersion);
    expect(await seriesValue(second.metrics.watchRestarts, { resource: 'pods', reason: 'gone' })).toBe(1);
    expect(await seriesValue(second.metrics.relists, { resource: 'pods', via: 'relist' })).toBe(1);

    // And it follows on by watch from the list's version.
    await core.createNamespacedPod({ namespace, body: managedPod('d', namespace) });
    await waitFor('d by watch', async () =>
      second.seen.some((s) => s.name === 'd' && s.change === 'added' && s.via === 'watch'),
    );
  });
});
