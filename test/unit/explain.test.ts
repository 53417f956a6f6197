import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { explainPod, formatDuration, formatExplanation } from '../../lib/core/explain.ts';
import type { Pod } from '../../lib/core/pod.ts';

function fixture(name: string): Pod {
  return JSON.parse(readFileSync(new URL(`../fixtures/pods/${name}.json`, import.meta.url), 'utf8')) as Pod;
}

const KPO_TASK = {
  key: 'etl_daily/extract_orders/scheduled__2026-04-09T0900000000-020f81fe0/-1',
  try: 1,
  profile: 'airflow-kpo',
} as const;
const at = (iso: string) => Date.parse(iso);

describe('explainPod', () => {
  it('explains a running KPO pod', () => {
    expect(explainPod(fixture('kpo-running'), 'airflow-kpo', { now: at('2026-04-09T09:10:00Z') })).toEqual({
      task: KPO_TASK,
      verdict: {
        kind: 'running',
        reason:
          'main container base running since 2026-04-09T09:00:17Z; running alongside: airflow-xcom-sidecar',
      },
    });
  });

  it('explains a sidecar zombie with the exit code and how long it has been stuck (seed 001)', () => {
    const zombie = fixture('kpo-zombie-sidecar');
    const early = explainPod(zombie, 'airflow-kpo', { now: at('2026-04-09T09:16:02Z') });
    expect(early.verdict).toEqual({
      kind: 'zombie-sidecar',
      reason:
        'main container base exited 0 (Completed) 2m ago (at 2026-04-09T09:14:02Z) but the pod is still Running: sidecar airflow-xcom-sidecar still running; within the 5m sidecar grace (3m left), then the reaper takes the outcome from the exit code and deletes the pod',
    });
    const late = explainPod(zombie, 'airflow-kpo', {
      now: at('2026-04-09T10:00:00Z'),
      sidecarGraceMs: 60_000,
    });
    expect(late.verdict.reason).toContain('45m58s ago');
    expect(late.verdict.reason).toContain('past the 1m sidecar grace: the reaper takes the outcome');
  });

  it('explains a preemption before anything else it sees (seed 000)', () => {
    expect(explainPod(fixture('kpo-preempted'), 'airflow-kpo')).toEqual({
      task: KPO_TASK,
      verdict: {
        kind: 'disrupted',
        reason:
          'DisruptionTarget PreemptionByScheduler: default-scheduler: preempting to accommodate a higher priority pod (at 2026-04-09T09:05:11Z); the pod is being deleted (since 2026-04-09T09:05:41Z); once it is gone Podwarden re-creates it with the same name as attempt 2, if the re-create budget allows',
      },
    });
  });

  it('says when the recreate annotation forbids re-creating a disrupted pod', () => {
    const pod = fixture('kpo-preempted');
    pod.metadata.annotations = { 'podwarden.io/recreate': 'before-start' };
    expect(explainPod(pod, 'airflow-kpo').verdict.reason).toMatch(
      /recreate=before-start and main container base already started: it is not re-created/,
    );
    pod.metadata.annotations = { 'podwarden.io/recreate': 'never' };
    expect(explainPod(pod, 'airflow-kpo').verdict.reason).toMatch(/recreate=never: it is not re-created/);
  });

  it('calls a disrupted pod disrupted even when it already failed', () => {
    const pod = fixture('kpo-preempted');
    pod.status!.phase = 'Failed';
    expect(explainPod(pod, 'airflow-kpo').verdict.kind).toBe('disrupted');
  });

  it('explains a rate-limited pull with the classifier’s evidence (seed 002)', () => {
    expect(explainPod(fixture('kpo-pull-rate-limited'), 'airflow-kpo').verdict).toEqual({
      kind: 'image-pull-transient',
      reason:
        'container airflow-xcom-sidecar: ErrImagePull, transient (rate-limit), matched "toomanyrequests"; the kubelet keeps retrying; Podwarden waits until the pull deadline (10m after the first error)',
    });
  });

  it('quotes the pod’s own pull deadline', () => {
    const pod = fixture('kpo-pull-rate-limited');
    pod.metadata.annotations = { 'podwarden.io/pull-deadline': '25m' };
    expect(explainPod(pod, 'airflow-kpo').verdict.reason).toContain(
      'until the pull deadline (25m after the first error)',
    );
  });

  it('explains a missing tag as permanent', () => {
    expect(explainPod(fixture('kpo-pull-not-found'), 'airflow-kpo').verdict).toEqual({
      kind: 'image-pull-permanent',
      reason:
        'container base: ImagePullBackOff, permanent (not-found), matched "not found"; it will not heal by retrying: the task fails with ImagePullPermanent',
    });
  });

  it('explains a failed pod with the main container’s exit code and try', () => {
    expect(explainPod(fixture('kpo-failed'), 'airflow-kpo')).toEqual({
      task: { ...KPO_TASK, try: 2 },
      verdict: { kind: 'failed', reason: 'pod Failed: main container base exited 1 (Error)' },
    });
  });

  it('explains a succeeded pod', () => {
    const pod = fixture('kpo-failed');
    pod.status!.phase = 'Succeeded';
    pod.status!.containerStatuses![1]!.state = { terminated: { exitCode: 0, reason: 'Completed' } };
    expect(explainPod(pod, 'airflow-kpo').verdict).toEqual({
      kind: 'succeeded',
      reason: 'pod Succeeded: main container base exited 0 (Completed)',
    });
  });

  it('explains an unschedulable pod as pending', () => {
    expect(explainPod(fixture('kpo-unschedulable'), 'airflow-kpo').verdict).toEqual({
      kind: 'pending',
      reason:
        'pod Pending: unschedulable: 0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.',
    });
  });

  it('explains a pod of another workload as unmanaged, saying why', () => {
    expect(explainPod(fixture('unmanaged'), 'airflow-kpo')).toEqual({
      task: null,
      verdict: {
        kind: 'unmanaged',
        reason:
          'not a task of profile airflow-kpo: label kubernetes_pod_operator is missing; profile airflow-kpo manages pods with kubernetes_pod_operator=True',
      },
    });
  });

  it('explains a selected pod with a malformed identity as unmanaged, naming the label', () => {
    expect(explainPod(fixture('kpo-malformed'), 'airflow-kpo')).toEqual({
      task: null,
      verdict: {
        kind: 'unmanaged',
        reason:
          'selected by profile airflow-kpo but its identity is malformed: try label try_number is missing; the reaper reports such pods and never deletes them',
      },
    });
  });

  it('uses the annotated main container and native sidecars for the generic profile', () => {
    const explanation = explainPod(fixture('generic-native-sidecar'), 'generic', {
      now: at('2026-04-09T02:32:55Z'),
    });
    expect(explanation.task).toEqual({ key: 'nightly-report', try: 1, profile: 'generic' });
    expect(explanation.verdict.kind).toBe('zombie-sidecar');
    expect(explanation.verdict.reason).toMatch(
      /^main container report exited 0 \(Completed\) 1m ago .* sidecar cloud-sql-proxy still running/,
    );
    expect(explainPod(fixture('kpo-running'), 'generic').verdict.kind).toBe('unmanaged');
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [42_000, '42s'],
    [60_000, '1m'],
    [192_000, '3m12s'],
    [3_600_000, '1h'],
    [7_500_000, '2h5m'],
    [3 * 86_400_000 + 3_600_000, '3d1h'],
    [-5_000, '0s'],
  ])('formats %d ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('formatExplanation', () => {
  it('prints the task, the verdict and why', () => {
    const text = formatExplanation(explainPod(fixture('kpo-failed'), 'airflow-kpo'));
    expect(text.split('\n')).toEqual([
      'task:    etl_daily/extract_orders/scheduled__2026-04-09T0900000000-020f81fe0/-1 (try 2, profile airflow-kpo)',
      'verdict: failed',
      'why:     pod Failed: main container base exited 1 (Error)',
    ]);
    expect(formatExplanation(explainPod(fixture('unmanaged'), 'airflow-kpo'))).toMatch(
      /^task: {4}none\nverdict: unmanaged\n/,
    );
  });
});
