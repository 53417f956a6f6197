/**
 * Property tests: random worlds (preemptions, deletions, pull errors, zombies, new tries) delivered
 * to the engine as duplicated, reordered and lost observations, with the engine's actions applied
 * to a model cluster that enforces Kubernetes' name uniqueness.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Action } from '../../lib/core/action.ts';
import { decideAll, nextDeadline, startTask } from '../../lib/core/engine.ts';
import type { Observation } from '../../lib/core/observation.ts';
import type { ContainerState, Pod } from '../../lib/core/pod.ts';
import { makePolicy } from '../../lib/core/policy.ts';
import { isTerminal, type TaskRecord } from '../../lib/core/task.ts';
import { kpoPod, preemptedCondition, running, T0, terminated, waiting } from '../support/pod-builder.ts';

const policy = makePolicy();

type Step =
  | { kind: 'advance'; ms: number }
  | { kind: 'preempt' }
  /** A `Preempted` event the API server never wrote (a bridge bug, a replay, another cluster's). */
  | { kind: 'forged-preempt' }
  | { kind: 'finish-deletion' }
  | { kind: 'delete-external' }
  | { kind: 'start' }
  | { kind: 'complete'; code: number }
  | { kind: 'zombie'; code: number }
  | { kind: 'pull-error'; permanent: boolean }
  | { kind: 'new-try' }
  | { kind: 'orchestrator'; state: string }
  | { kind: 'deliver'; pick: number; duplicate: boolean }
  | { kind: 'drop'; pick: number }
  | { kind: 'timer' }
  | { kind: 'reaper' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 500, max: 400_000 }) }),
  fc.constant({ kind: 'preempt' as const }),
  fc.constant({ kind: 'forged-preempt' as const }),
  fc.constant({ kind: 'finish-deletion' as const }),
  fc.constant({ kind: 'delete-external' as const }),
  fc.constant({ kind: 'start' as const }),
  fc.record({ kind: fc.constant('complete' as const), code: fc.constantFrom(0, 1) }),
  fc.record({ kind: fc.constant('zombie' as const), code: fc.constantFrom(0, 2) }),
  fc.record({ kind: fc.constant('pull-error' as const), permanent: fc.boolean() }),
  fc.constant({ kind: 'new-try' as const }),
  fc.record({
    kind: fc.constant('orchestrator' as const),
    state: fc.constantFrom('running', 'success', 'failed', 'up_for_retry'),
  }),
  fc.record({ kind: fc.constant('deliver' as const), pick: fc.nat(), duplicate: fc.boolean() }),
  fc.record({ kind: fc.constant('drop' as const), pick: fc.nat() }),
  fc.constant({ kind: 'timer' as const }),
  fc.constant({ kind: 'reaper' as const }),
);

interface ModelPod {
  pod: Pod;
  tryNumber: number;
  createdBy: 'orchestrator' | 'podwarden';
}

/** A one-task cluster with Kubernetes' rules that matter here: names are unique among live pods. */
class World {
  now = T0 + 3_600_000;
  uidSeq = 0;
  pods = new Map<string, ModelPod>();
  queue: Observation[] = [];
  tryNumber = 1;
  task: TaskRecord;
  createsPerTry = new Map<number, number>();
  violations: string[] = [];
  /** The disruption events the API server holds, by pod uid: what the reconciler reads back. */
  serverEvents = new Map<string, Extract<Observation, { type: 'preempted-event' }>>();
  /** A protected pod and a foreign pod always in the listing: the reaper must never delete them. */
  bystanders: Pod[];

  constructor() {
    const first = this.add(
      1,
      'orchestrator',
      kpoPod({ name: 'load-t1', uid: this.uid(), phase: 'Pending', createdAt: T0 }),
    );
    this.task = startTask(first, 'airflow-kpo', 'prod', this.now) as TaskRecord;
    this.bystanders = [
      kpoPod({
        name: 'other-protected',
        uid: 'protected-uid',
        taskId: 'other',
        main: terminated(0, T0),
        sidecar: running(),
        annotations: { 'podwarden.io/protect': 'true' },
        createdAt: T0,
      }),
      {
        ...kpoPod({ name: 'foreign', uid: 'foreign-uid', createdAt: T0 }),
        metadata: { name: 'foreign', namespace: 'airflow', uid: 'foreign-uid', labels: { app: 'web' } },
      },
    ];
    this.apply(decideAll(this.task, [{ type: 'pod-seen', pod: first }], this.now, policy));
  }

  uid(): string {
    return `uid-${++this.uidSeq}`;
  }

  add(tryNumber: number, createdBy: ModelPod['createdBy'], pod: Pod): Pod {
    this.pods.set(pod.metadata.name ?? '', { pod, tryNumber, createdBy });
    return pod;
  }

  current(): ModelPod | undefined {
    return this.pods.get(`load-t${this.tryNumber}`);
  }

  mutate(change: (pod: Pod) => void): void {
    const m = this.current();
    if (!m || m.pod.metadata.deletionTimestamp) return;
    change(m.pod);
    this.queue.push({ type: 'pod-seen', pod: structuredClone(m.pod) });
  }

  step(s: Step): void {
    switch (s.kind) {
      case 'advance':
        this.now += s.ms;
        return;
      case 'preempt':
        this.mutate((pod) => {
          pod.status = { ...pod.status, conditions: [preemptedCondition(this.now)] };
          pod.metadata.deletionTimestamp = new Date(this.now).toISOString();
        });
        {
          const m = this.current();
          if (m) {
            const event = {
              type: 'preempted-event' as const,
              podName: m.pod.metadata.name ?? '',
              podUid: m.pod.metadata.uid ?? '',
              reason: 'Preempted',
              message: 'Preempted by pod x on node y',
              at: this.now,
            };
            this.serverEvents.set(event.podUid, event);
            this.queue.push(event);
          }
        }
        return;
      case 'forged-preempt': {
        const m = this.current();
        if (m)
          this.queue.push({
            type: 'preempted-event',
            podName: m.pod.metadata.name ?? '',
            podUid: m.pod.metadata.uid ?? '',
            reason: 'Preempted',
            message: 'forged',
            at: this.now,
          });
        return;
      }
      case 'finish-deletion':
      case 'delete-external': {
        const m = this.current();
        if (!m || (s.kind === 'finish-deletion' && !m.pod.metadata.deletionTimestamp)) return;
        this.pods.delete(m.pod.metadata.name ?? '');
        this.queue.push({
          type: 'pod-gone',
          podName: m.pod.metadata.name ?? '',
          podUid: m.pod.metadata.uid ?? '',
        });
        return;
      }
      case 'start':
        this.mutate((pod) => setMain(pod, 'Running', running(this.now)));
        return;
      case 'complete':
        this.mutate((pod) => {
          setMain(pod, s.code === 0 ? 'Succeeded' : 'Failed', terminated(s.code, this.now));
          const sidecar = pod.status?.containerStatuses?.[1];
          if (sidecar) sidecar.state = terminated(0, this.now);
        });
        return;
      case 'zombie':
        this.mutate((pod) => setMain(pod, 'Running', terminated(s.code, this.now)));
        return;
      case 'pull-error':
        this.mutate((pod) =>
          setMain(
            pod,
            'Pending',
            waiting('ErrImagePull', s.permanent ? 'manifest unknown' : 'toomanyrequests: rate limit'),
          ),
        );
        return;
      case 'new-try': {
        this.tryNumber += 1;
        const pod = this.add(
          this.tryNumber,
          'orchestrator',
          kpoPod({
            name: `load-t${this.tryNumber}`,
            uid: this.uid(),
            tryNumber: this.tryNumber,
            phase: 'Pending',
            createdAt: this.now,
          }),
        );
        this.queue.push({ type: 'pod-seen', pod: structuredClone(pod) });
        return;
      }
      case 'orchestrator':
        this.queue.push({ type: 'orchestrator-task-changed', tryNumber: this.tryNumber, state: s.state });
        return;
      case 'deliver': {
        if (this.queue.length === 0) return;
        const i = s.pick % this.queue.length;
        const hint = this.queue[i] as Observation;
        if (!s.duplicate) this.queue.splice(i, 1);
        this.handle([hint]);
        return;
      }
      case 'drop':
        if (this.queue.length > 0) this.queue.splice(s.pick % this.queue.length, 1);
        return;
      case 'timer':
        if (this.task.dueAt !== undefined && this.task.dueAt <= this.now)
          this.handle([{ type: 'timer-fired' }]);
        return;
      case 'reaper': {
        const listing = [...[...this.pods.values()].map((m) => structuredClone(m.pod)), ...this.bystanders];
        this.handle([{ type: 'reaper-scan', pods: listing }]);
        return;
      }
    }
  }

  /** What a handler does: hints first, then the freshly re-read pod. */
  handle(received: Observation[]): void {
    // As the reconciler does: a disruption event counts only as read back from the API server.
    const readBack = (uid: string | undefined): Observation[] => {
      const onServer = uid === undefined ? undefined : this.serverEvents.get(uid);
      return onServer ? [{ ...onServer, confirmed: true }] : [];
    };
    const hints = [
      ...received.flatMap((hint) =>
        hint.type === 'preempted-event' ? [hint, ...readBack(hint.podUid)] : [hint],
      ),
      ...readBack(this.task.disruptionHint?.podUid),
    ];
    const name = this.task.podName;
    const live = this.pods.get(name);
    const fresh: Observation = live
      ? { type: 'pod-seen', pod: structuredClone(live.pod) }
      : { type: 'pod-gone', podName: name };
    let decision = decideAll(this.task, [...hints, fresh], this.now, policy);
    if (decision.actions.some((a) => a.kind === 'create-pod')) {
      // As the reconciler does: list the task's pods before a re-create, newer tries first.
      const newer = [...this.pods.values()]
        .filter((m) => m.tryNumber > this.task.tryNumber)
        .sort((a, b) => a.tryNumber - b.tryNumber);
      if (newer.length > 0)
        decision = decideAll(
          this.task,
          [
            ...newer.map((m) => ({ type: 'pod-seen' as const, pod: structuredClone(m.pod) })),
            ...hints,
            fresh,
          ],
          this.now,
          policy,
        );
    }
    this.apply(decision);
  }

  apply(decision: { task: TaskRecord; actions: Action[] }): void {
    const disruptedUid = decision.task.disruption?.podUid;
    if (disruptedUid !== undefined && !this.serverEvents.has(disruptedUid))
      this.violations.push(`Recovering for pod ${disruptedUid}, which was never disrupted`);
    this.task = decision.task;
    const followUps: Observation[] = [];
    for (const action of decision.actions) {
      if (action.kind === 'create-pod') {
        const tryNumber = Number(action.pod.metadata.labels?.try_number);
        const livePodsOfTry = [...this.pods.values()].filter((m) => m.tryNumber === tryNumber);
        if (livePodsOfTry.length > 0 && !this.pods.has(action.podName))
          this.violations.push(`created a second pod for try ${tryNumber}`);
        // Podwarden cannot know of a newer try it never observed; it must not race one that is live.
        if ([...this.pods.values()].some((m) => m.tryNumber > tryNumber))
          this.violations.push(`re-created try ${tryNumber} beside a live newer try`);
        if (this.pods.has(action.podName)) continue; // 409 AlreadyExists
        this.createsPerTry.set(tryNumber, (this.createsPerTry.get(tryNumber) ?? 0) + 1);
        if ((this.createsPerTry.get(tryNumber) ?? 0) > policy.recreateBudget)
          this.violations.push(`re-create beyond the budget for try ${tryNumber}`);
        const pod = structuredClone(action.pod);
        pod.metadata.uid = this.uid();
        pod.metadata.creationTimestamp = new Date(this.now).toISOString();
        pod.status = {
          phase: 'Pending',
          containerStatuses: [{ name: 'base' }, { name: 'airflow-xcom-sidecar' }],
        };
        this.add(tryNumber, 'podwarden', pod);
        followUps.push({ type: 'pod-seen', pod: structuredClone(pod) });
      }
      if (action.kind === 'delete-pod') {
        const target = [...this.pods.values(), ...this.bystanders.map((pod) => ({ pod }))].find(
          (m) => m.pod.metadata.uid === action.uid,
        );
        // A uid no longer in the cluster answers 404: harmless, the precondition protects successors.
        if (target && target.pod.metadata.labels?.kubernetes_pod_operator !== 'True')
          this.violations.push(`deleted an unmanaged pod ${action.podName}`);
        if (target?.pod.metadata.annotations?.['podwarden.io/protect'] === 'true')
          this.violations.push(`deleted protected pod ${action.podName}`);
        if (target && this.pods.get(action.podName)?.pod.metadata.uid === action.uid) {
          this.pods.delete(action.podName);
          this.queue.push({ type: 'pod-gone', podName: action.podName, podUid: action.uid });
        }
      }
    }
    if (followUps.length > 0) this.apply(decideAll(this.task, followUps, this.now, policy));
  }

  /** No more changes from the world: deliver what is queued, finish deletions, run every timer. */
  settle(done: (task: TaskRecord) => boolean = () => false): number {
    for (const m of [...this.pods.values()]) {
      if (m.pod.metadata.deletionTimestamp) {
        this.pods.delete(m.pod.metadata.name ?? '');
        this.queue.push({
          type: 'pod-gone',
          podName: m.pod.metadata.name ?? '',
          podUid: m.pod.metadata.uid ?? '',
        });
      }
    }
    while (this.queue.length > 0) this.handle([this.queue.shift() as Observation]);
    let timers = 0;
    const withoutTimer = ({ dueAt, ...rest }: TaskRecord) => JSON.stringify(rest);
    while (this.task.dueAt !== undefined && !done(this.task) && timers < 200) {
      const before = withoutTimer(this.task);
      this.now = Math.max(this.now, this.task.dueAt);
      this.handle([{ type: 'timer-fired' }]);
      timers++;
      // A resync that changed nothing: the task is at rest until the world changes again.
      if (withoutTimer(this.task) === before && nextDeadline(this.task, policy, this.now) === undefined)
        break;
    }
    return timers;
  }
}

function setMain(pod: Pod, phase: string, state: ContainerState | undefined): void {
  const statuses = pod.status?.containerStatuses ?? [];
  const main = statuses.find((c) => c.name === 'base');
  if (main && state) main.state = state;
  const sidecar = statuses.find((c) => c.name !== 'base');
  if (sidecar && !sidecar.state) sidecar.state = running();
  pod.status = { ...pod.status, phase, containerStatuses: statuses };
}

describe('engine properties over random observation sequences', () => {
  it('never two live pods for a try, never beyond the budget, never a forbidden delete, always converges', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 60 }), (steps) => {
        const world = new World();
        for (const step of steps) world.step(step);
        const timers = world.settle();
        expect(world.violations).toEqual([]);
        expect(timers).toBeLessThan(200);
        const { task } = world;
        expect(['Recovering', 'WaitingForImage']).not.toContain(task.state);
        if (isTerminal(task.state)) expect(task.dueAt).toBeUndefined();
        else expect(task.dueAt).toBeGreaterThan(world.now); // the resync keeps watching it
        if (!isTerminal(task.state)) {
          const live = world.pods.get(task.podName);
          expect(live?.pod.metadata.uid, `state ${task.state} without its pod`).toBe(task.podUid);
        }
      }),
      { numRuns: 400 },
    );
  }, 60_000);

  it('a disrupted task with budget left always ends with its pod re-created under the same name', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: policy.recreateBudget }),
        fc.boolean(),
        (preemptions, eventFirst) => {
          const world = new World();
          world.step({ kind: 'start' });
          world.settle();
          for (let i = 0; i < preemptions; i++) {
            world.step({ kind: 'start' });
            world.step({ kind: 'preempt' });
            world.step({ kind: 'finish-deletion' });
            if (eventFirst) world.queue.reverse();
            world.settle((task) => task.state !== 'Recovering');
          }
          expect(world.violations).toEqual([]);
          expect(world.task).toMatchObject({
            recreates: preemptions,
            attempt: preemptions + 1,
            podName: 'load-t1',
          });
          expect(world.pods.get('load-t1')?.createdBy).toBe('podwarden');
        },
      ),
      { numRuns: 50 },
    );
  });
});
