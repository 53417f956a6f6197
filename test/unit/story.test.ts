import { describe, expect, it } from 'vitest';
import type { Action } from '../../lib/core/action.ts';
import { makePolicy } from '../../lib/core/policy.ts';
import { STORY_ANNOTATIONS as A, type PerformedAction, storyOf } from '../../lib/core/story.ts';
import type { TaskRecord } from '../../lib/core/task.ts';
import { FIXTURE_NOW, makeCapturedPod, makeTaskRecord } from '../support/task-fixtures.ts';

const policy = makePolicy();
const OLD_UID = '6f1d2c3b-8a4e-4f0a-9b7c-2d5e8f1a3c4b';
const NEW_UID = '0b7e4c1a-2f3d-4e5a-8b9c-1d2e3f4a5b6c';

const running = makeTaskRecord({ version: 3 });
const evidence = [
  {
    source: 'condition DisruptionTarget',
    reason: 'PreemptionByScheduler',
    message: 'preempted by pod x',
    at: FIXTURE_NOW,
  },
];
const recovering = (over: Partial<NonNullable<TaskRecord['disruption']>> = {}): TaskRecord => ({
  ...running,
  state: 'Recovering',
  disruption: { podUid: OLD_UID, evidence, nextAttempt: 2, ...over },
});

const createAction: Extract<Action, { kind: 'create-pod' }> = {
  kind: 'create-pod',
  namespace: 'airflow',
  podName: running.podName,
  attempt: 2,
  replacesUid: OLD_UID,
  pod: { metadata: makeCapturedPod().metadata, spec: { containers: [] } },
};

describe('the pod story', () => {
  it('announces a pending re-create with an estimated due time while the old pod is still there', () => {
    const [event, ...rest] = storyOf(running, recovering(), [], FIXTURE_NOW, policy);
    expect(rest).toEqual([]);
    expect(event).toMatchObject({
      reason: 'RecreatePending',
      type: 'Normal',
      podName: running.podName,
      podUid: OLD_UID,
      annotations: {
        [A.dueAt]: new Date(FIXTURE_NOW + policy.recreateBackoffBaseMs).toISOString(),
        [A.nextAttempt]: '2',
        [A.taskKey]: running.id.key,
        [A.tryNumber]: '1',
        [A.attempt]: '1',
      },
    });
    expect(event?.message).toContain('preempted by pod x');
  });

  it('announces the exact due time under a new key once the old pod is gone', () => {
    const recreateAt = FIXTURE_NOW + 4_000;
    const going = storyOf(running, recovering(), [], FIXTURE_NOW, policy)[0];
    const gone = storyOf(
      recovering(),
      recovering({ goneAt: FIXTURE_NOW, recreateAt }),
      [],
      FIXTURE_NOW,
      policy,
    )[0];
    expect(gone?.annotations[A.dueAt]).toBe(new Date(recreateAt).toISOString());
    expect(gone?.key).not.toBe(going?.key);
    // The same decision repeated keeps its key, so the Event is written once.
    const again = storyOf(
      recovering(),
      recovering({ goneAt: FIXTURE_NOW, recreateAt }),
      [],
      FIXTURE_NOW + 9,
      policy,
    )[0];
    expect(again?.key).toBe(gone?.key);
  });

  it('tells of the replacement on the new pod, with the uid the API server gave it', () => {
    const performed: PerformedAction[] = [{ action: createAction, outcome: 'created', uid: NEW_UID }];
    const story = storyOf(
      recovering({ goneAt: FIXTURE_NOW, recreateAt: FIXTURE_NOW }),
      recovering({ goneAt: FIXTURE_NOW, recreateAt: FIXTURE_NOW, recreateIssuedAt: FIXTURE_NOW }),
      performed,
      FIXTURE_NOW,
      policy,
    );
    expect(story.map((e) => e.reason)).toEqual(['Recreated']);
    expect(story[0]).toMatchObject({
      podUid: NEW_UID,
      annotations: { [A.newUid]: NEW_UID, [A.replacesUid]: OLD_UID, [A.attempt]: '2' },
    });
  });

  it('says nothing of a replacement whose create came back as someone else’s pod', () => {
    const performed: PerformedAction[] = [{ action: createAction, outcome: 'exists-other', uid: NEW_UID }];
    const story = storyOf(
      recovering(),
      recovering({ goneAt: FIXTURE_NOW, recreateAt: FIXTURE_NOW }),
      performed,
      FIXTURE_NOW,
      policy,
    );
    expect(story.map((e) => e.reason)).toEqual(['RecreatePending']);
  });

  it('gives up once, as a Warning carrying the cause and the evidence', () => {
    const failed: TaskRecord = {
      ...running,
      state: 'Failed',
      cause: 'ImagePullPermanent',
      message: 'image pull failed permanently (not-found: manifest unknown)',
    };
    const emit: PerformedAction = {
      action: {
        kind: 'emit',
        event: {
          id: 'x',
          type: 'Task Failed',
          at: FIXTURE_NOW,
          task: running.id,
          tryNumber: 1,
          attempt: 1,
          podName: running.podName,
          message: failed.message ?? '',
          evidence: [
            {
              source: 'container base waiting',
              message: 'manifest unknown: tag 9.9 not found',
              at: FIXTURE_NOW,
            },
          ],
        },
      },
    };
    const [event] = storyOf(running, failed, [emit], FIXTURE_NOW, policy);
    expect(event).toMatchObject({
      reason: 'GaveUp',
      type: 'Warning',
      podUid: OLD_UID,
      annotations: { [A.cause]: 'ImagePullPermanent' },
    });
    expect(event?.message).toContain('manifest unknown: tag 9.9 not found');
    expect(storyOf(failed, failed, [], FIXTURE_NOW, policy)).toEqual([]);
  });

  it('tells a transient pull wait with its deadline and container', () => {
    const waiting: TaskRecord = {
      ...running,
      state: 'WaitingForImage',
      mainStarted: false,
      imagePull: {
        since: FIXTURE_NOW,
        deadline: FIXTURE_NOW + 600_000,
        checks: 0,
        nextCheckAt: FIXTURE_NOW + 10_000,
        evidence: {
          source: 'container base waiting',
          reason: 'ErrImagePull',
          message: 'toomanyrequests',
          at: FIXTURE_NOW,
        },
      },
    };
    const [event] = storyOf(running, waiting, [], FIXTURE_NOW, policy);
    expect(event).toMatchObject({
      reason: 'ImagePullWaiting',
      annotations: {
        [A.deadline]: new Date(FIXTURE_NOW + 600_000).toISOString(),
        [A.classification]: 'transient',
        [A.container]: 'base',
      },
    });
  });

  it('tells a reap only when the delete happened, with the main container’s exit code', () => {
    const reap: Extract<Action, { kind: 'delete-pod' }> = {
      kind: 'delete-pod',
      namespace: 'airflow',
      podName: running.podName,
      uid: OLD_UID,
      gracePeriodSeconds: 0,
      why: 'main container exited 0 six minutes ago',
      rule: 'sidecar-zombie',
    };
    const succeeded: TaskRecord = { ...running, state: 'Succeeded', mainExitCode: 0 };
    const [event] = storyOf(
      succeeded,
      succeeded,
      [{ action: reap, outcome: 'deleted' }],
      FIXTURE_NOW,
      policy,
    );
    expect(event).toMatchObject({
      reason: 'Reaped',
      podUid: OLD_UID,
      annotations: { [A.rule]: 'sidecar-zombie', [A.exitCode]: '0' },
    });
    expect(
      storyOf(succeeded, succeeded, [{ action: reap, outcome: 'uid-mismatch' }], FIXTURE_NOW, policy),
    ).toEqual([]);
  });
});
