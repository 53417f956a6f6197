import { describe, expect, it } from 'vitest';
import { checkMessageBody, parseCheckMessage } from '../../lib/scheduler/check-message.ts';

const TASK = { cluster: 'prod', namespace: 'airflow', key: 'etl/load/scheduled__2026-04-09/-1' };

describe('due-check messages', () => {
  it('round-trips a task and its due time, and nothing else', () => {
    const body = checkMessageBody({ ...TASK, extra: 'dropped' } as typeof TASK, 1_800_000_000_000);
    expect(JSON.parse(body)).toEqual({ v: 1, task: TASK, at: 1_800_000_000_000 });
    expect(parseCheckMessage(body)).toEqual({ ok: true, check: { v: 1, task: TASK, at: 1_800_000_000_000 } });
  });

  it.each([
    ['not json', /body is not JSON/],
    ['[1]', /body is an array, not an object/],
    ['{"v": 2, "task": {}, "at": 1}', /body.v is number 2, not 1/],
    ['{"v": 1, "task": {}, "at": -5}', /body.at is number -5, not epoch milliseconds/],
    ['{"v": 1, "task": "x", "at": 1}', /body.task is "x", not an object/],
    [
      '{"v": 1, "task": {"cluster": "", "namespace": "a", "key": "k"}, "at": 1}',
      /body.task.cluster is "", not a cluster name/,
    ],
    [
      '{"v": 1, "task": {"cluster": "c", "namespace": "Not_NS", "key": "k"}, "at": 1}',
      /body.task.namespace is "Not_NS"/,
    ],
    [
      '{"v": 1, "task": {"cluster": "c", "namespace": "a", "key": ""}, "at": 1}',
      /body.task.key is "", not a task key/,
    ],
  ])('refuses %s, naming the field', (body, problem) => {
    const parsed = parseCheckMessage(body);
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? '' : parsed.problem).toMatch(problem);
  });
});
