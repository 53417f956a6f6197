/**
 * A due check of the delayed queue (lib/reconciler/check.ts) on an in-memory store and cluster:
 * what matters is the moment the reconcile runs, measured by the same clock the decision reads.
 */
import { describe, expect, it } from 'vitest';
import { ATTEMPT_LABEL } from '../../lib/core/capture.ts';
import type { Pod } from '../../lib/core/pod.ts';
import { DEFAULT_POLICY } from '../../lib/core/policy.ts';
import type { Cluster } from '../../lib/core/ports.ts';
import type { TaskRecord } from '../../lib/core/task.ts';
import { MemoryTaskStore } from '../../lib/local/memory-store.ts';
import { runDueCheck } from '../../lib/reconciler/check.ts';
import type { ReconcilerDeps } from '../../lib/reconciler/reconcile.ts';
import { FIXTURE_NOW, makeTaskRecord } from '../support/task-fixtures.ts';

const OLD_UID = '0f9c06a0-0308-4bb4-a1aa-7ed40801e01f';

/** The cluster after a preemption: the old pod is gone, so the name is free for the re-create. */
function freedCluster() {
  const created: Pod[] = [];
  const cluster: Cluster = {
    getPod: async (_cluster, _namespace, name) => created.find((pod) => pod.metadata.name === name),
    createPod: async (_cluster, pod) => {
      const stored = { ...pod, metadata: { ...pod.metadata, uid: `new-${created.length + 1}` } };
      created.push(stored);
      return { outcome: 'created', pod: stored };
    },
    deletePod: async () => 'not-found',
    listPods: async () => [],
    listEvents: async () => [],
    createEvent: async () => 'created',
  };
  return { cluster, created };
}

/** Recovering: the old pod was seen gone 2 s ago, the back-off ends at `recreateAt`. */
function recoveringTask(recreateAt: number): TaskRecord {
  return makeTaskRecord({
    state: 'Recovering',
    podUid: OLD_UID,
    disruption: {
      podUid: OLD_UID,
      nextAttempt: 2,
      evidence: [
        {
          source: 'condition DisruptionTarget',
          reason: 'PreemptionByScheduler',
          message: '',
          at: FIXTURE_NOW,
        },
      ],
      goneAt: recreateAt - DEFAULT_POLICY.recreateBackoffBaseMs,
      recreateAt,
    },
    retiredUids: [OLD_UID],
    dueAt: recreateAt,
  });
}

describe('runDueCheck', () => {
  it('re-creates on the check that carries the back-off even when its sleep wakes a millisecond early', async () => {
    const recreateAt = FIXTURE_NOW + 2_000;
    // The SQS delay is whole seconds rounded down: the message arrives 700 ms before the due time.
    let now = recreateAt - 700;
    // Node's setTimeout may return 1 ms before its time as Date.now() reads it (measured on this
    // machine: 3 of 34 such sleeps in one recovery bench run); here the first sleep does.
    const sleeps: number[] = [];
    let wakesEarlyMs = 1;
    const sleep = async (ms: number) => {
      sleeps.push(ms);
      now += ms - wakesEarlyMs;
      wakesEarlyMs = 0;
    };
    const store = new MemoryTaskStore();
    const { cluster, created } = freedCluster();
    const task = recoveringTask(recreateAt);
    await store.put(task, now);
    const deps: ReconcilerDeps = {
      store,
      cluster,
      sink: { emit: async () => undefined },
      policy: DEFAULT_POLICY,
      clock: () => now,
      actor: 'test:check',
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    };

    const ran = await runDueCheck(deps, task.id, { sleep });

    // This message is the only one queued for the back-off's end: a reconcile before it would
    // find nothing due and leave nothing to wake the task until the next re-check or sweep.
    expect(ran.outcome).toBe('reconciled');
    expect(created.map((pod) => pod.metadata.labels?.[ATTEMPT_LABEL])).toEqual(['2']);
    expect(sleeps).toEqual([700, 1]);
    expect(now).toBeGreaterThanOrEqual(recreateAt);
    expect(await store.get(task.id)).toMatchObject({ state: 'Pending', attempt: 2, podUid: 'new-1' });
    const audit = await store.listAudit(task.id);
    expect(audit.filter((entry) => entry.what === 'create-pod')).toEqual([
      expect.objectContaining({ outcome: 'created', podUid: 'new-1', actor: 'test:check' }),
    ]);
  });
});
