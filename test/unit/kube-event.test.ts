import { describe, expect, it } from 'vitest';
import { eventHint } from '../../lib/core/kube-event.ts';
import type { KubeEvent } from '../../lib/core/ports.ts';

const base: KubeEvent = {
  namespace: 'airflow',
  name: 'load-x.1',
  reason: 'Preempted',
  message: 'Preempted by pod 3860 on node ip-10-105-68-155',
  involvedObject: { kind: 'Pod', name: 'load-x', namespace: 'airflow', uid: 'u1' },
  lastTimestamp: '2026-04-09T09:00:00Z',
};

describe('eventHint', () => {
  it('turns a Preempted event into a disruption hint for its pod uid, at the event time', () => {
    expect(eventHint(base, 0)).toEqual({
      type: 'preempted-event',
      podName: 'load-x',
      podUid: 'u1',
      reason: 'Preempted',
      message: base.message,
      at: Date.parse('2026-04-09T09:00:00Z'),
    });
  });

  it('turns a kubelet pull failure into an image-pull hint, and ignores unrelated events', () => {
    const pull = {
      ...base,
      reason: 'Failed',
      message: 'Failed to pull image "busybox": 429 Too Many Requests - toomanyrequests',
    };
    expect(eventHint(pull, 0)?.type).toBe('image-pull-event');
    expect(
      eventHint({ ...base, reason: 'Scheduled', message: 'Successfully assigned airflow/load-x' }, 0),
    ).toBeUndefined();
    expect(eventHint({ ...base, involvedObject: { kind: 'Pod' } }, 0)).toBeUndefined();
  });
});
