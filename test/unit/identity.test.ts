import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ANNOTATIONS,
  identifyPod,
  LABELS,
  mainContainerName,
  orchestratorTaskKey,
  PROFILES,
  parseProfileName,
  readOverrides,
  safeLabelValue,
} from '../../lib/core/identity.ts';
import type { Pod } from '../../lib/core/pod.ts';

/*
 * Expected values computed with Airflow's own function, run by python3 (3.11):
 *
 *   def make_safe_label_value(string):
 *       MAX_LABEL_LEN = 63
 *       safe_label = re.sub(r"^[^a-z0-9A-Z]*|[^a-zA-Z0-9_\-\.]|[^a-z0-9A-Z]*$", "", string)
 *       if len(safe_label) > MAX_LABEL_LEN or string != safe_label:
 *           safe_hash = md5(string.encode()).hexdigest()[:9]
 *           safe_label = safe_label[: MAX_LABEL_LEN - len(safe_hash) - 1] + "-" + safe_hash
 *       return safe_label
 *
 *   print(json.dumps([[s, make_safe_label_value(s)] for s in inputs]))
 */
const AIRFLOW_VECTORS: ReadonlyArray<readonly [string, string]> = [
  ['', ''],
  ['a', 'a'],
  ['my_dag', 'my_dag'],
  ['scheduled__2026-04-09T09:00:00+00:00', 'scheduled__2026-04-09T0900000000-020f81fe0'],
  ['manual__2026-04-09T09:00:00.123456+00:00', 'manual__2026-04-09T090000.1234560000-d6b7f38af'],
  ['backfill__2026-01-01T00:00:00+00:00', 'backfill__2026-01-01T0000000000-e7397dcd2'],
  [
    'dataset_triggered__2026-04-09T09:15:42.514729+00:00',
    'dataset_triggered__2026-04-09T091542.5147290000-e2cb1083b',
  ],
  [
    'asset_triggered__2026-04-09T09:15:42.514729+00:00',
    'asset_triggered__2026-04-09T091542.5147290000-7d10d8f51',
  ],
  ['manual__2026-04-09T09:00:00+00:00_abc123XY', 'manual__2026-04-09T0900000000_abc123XY-ec38cd79b'],
  [
    'a_very_long_dag_id_that_goes_on_and_on_for_more_than_sixty_three_characters_total',
    'a_very_long_dag_id_that_goes_on_and_on_for_more_than_-827aa314b',
  ],
  [
    // 63 characters: kept as is.
    'exactly_sixty_three_characters_long_dag_id_abcdefghijklmnopqrstu',
    'exactly_sixty_three_characters_long_dag_id_abcdefghij-18b43d548',
  ],
  [
    'exactly_sixty_four_characters_long_dag_id_abcdefghijklmnopqrstuv',
    'exactly_sixty_four_characters_long_dag_id_abcdefghijk-4277b015b',
  ],
  ['group.task_1', 'group.task_1'],
  ['x.y-z_w', 'x.y-z_w'],
  ['-leading-dash', 'leading-dash-528f2ac82'],
  ['trailing-dash-', 'trailing-dash-0d5a13b5f'],
  ['__dunder__', 'dunder-0f6281907'],
  ['.hidden.', 'hidden-cc15377f1'],
  ['--', '-cfab1ba8c'],
  ['-', '-336d5ebc5'],
  ['...', '-2f43b42fd'],
  ['a-', 'a-d538f7805'],
  ['-a', 'a-37caf0ee2'],
  ['-1', '1-6bb61e3b7'],
  ['task with spaces', 'taskwithspaces-3e3a67059'],
  ['t@sk#1', 'tsk1-3294686f2'],
  ['a/b', 'ab-a7e861365'],
  ['café_daily', 'caf_daily-38890eab4'],
  ['日本語のタスク', '-b096193c3'],
  ['🚀launch', 'launch-ab0781546'],
  ['launch🚀', 'launch-85a126cf9'],
  ['déjà-vu-🚀-task', 'dj-vu--task-a2b9c0a27'],
  ['a\n', 'a-60b725f10'],
  ['a-\n', 'a-b4072d313'],
  ['\na', 'a-d03b3c035'],
  ['0', '0'],
  ['True', 'True'],
];

/**
 * A second, independently written oracle: it walks the string the way Python's `re.sub` walks the
 * three alternatives of Airflow's regex (leading run at position 0; a disallowed character; a
 * non-alphanumeric run that reaches the end), instead of the implementation's two-pass strip.
 */
function oracle(input: string): string {
  const chars = Array.from(input);
  const alnum = (c: string) => /^[a-zA-Z0-9]$/.test(c);
  const allowed = (c: string) => /^[a-zA-Z0-9_.-]$/.test(c);
  let out = '';
  let i = 0;
  while (i < chars.length && !alnum(chars[i]!)) i++;
  for (; i < chars.length; i++) {
    const c = chars[i]!;
    if (!allowed(c)) continue;
    if (chars.slice(i).every((rest) => !alnum(rest))) break;
    out += c;
  }
  if (out.length > 63 || out !== input) {
    const hash = createHash('md5').update(Buffer.from(input, 'utf8')).digest('hex').substring(0, 9);
    out = `${out.substring(0, 53)}-${hash}`;
  }
  return out;
}

describe('safeLabelValue', () => {
  it.each(AIRFLOW_VECTORS)('matches Airflow for %j', (input, expected) => {
    expect(safeLabelValue(input)).toBe(expected);
  });

  it('agrees with an independent oracle on arbitrary strings', () => {
    const pieces = fc.constantFrom('a', 'Z', '7', '_', '-', '.', ' ', ':', '+', '/', '\n', 'é', '日', '🚀');
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: pieces, maxLength: 80 }), fc.string({ unit: 'grapheme' })),
        (input) => {
          expect(safeLabelValue(input)).toBe(oracle(input));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('always yields a value of at most 63 characters, idempotent on valid label values', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme-ascii', maxLength: 120 }), (input) => {
        const safe = safeLabelValue(input);
        expect(safe.length).toBeLessThanOrEqual(63);
        expect(safe).toMatch(/^[a-zA-Z0-9_.-]*$/);
        if (/^[a-zA-Z0-9]/.test(safe)) expect(safeLabelValue(safe)).toBe(safe);
      }),
    );
  });

  it('rejects a lone surrogate, on which Python raises UnicodeEncodeError', () => {
    expect(() => safeLabelValue('task\ud800')).toThrow(/lone UTF-16 surrogate/);
  });
});

describe('profiles', () => {
  it('have the selectors, try labels and main containers of the design', () => {
    expect(PROFILES['airflow-kpo'].labelSelector).toBe('kubernetes_pod_operator=True');
    expect(PROFILES['airflow-kpo'].selector).toEqual({ kubernetes_pod_operator: 'True' });
    expect(PROFILES['airflow-kpo'].tryLabel).toBe('try_number');
    expect(PROFILES.generic.labelSelector).toBe('podwarden.io/managed=true');
    expect(PROFILES.generic.tryLabel).toBe('podwarden.io/try');
    expect(LABELS.attempt).toBe('podwarden.io/attempt');
    expect(ANNOTATIONS).toEqual({
      protect: 'podwarden.io/protect',
      recreate: 'podwarden.io/recreate',
      pullDeadline: 'podwarden.io/pull-deadline',
      mainContainer: 'podwarden.io/main-container',
    });
  });

  it('parses profile names and names the bad one and the valid ones', () => {
    expect(parseProfileName('generic')).toBe('generic');
    expect(parseProfileName('airflow-kpo')).toBe('airflow-kpo');
    expect(() => parseProfileName('airflow')).toThrow(
      'unknown profile "airflow": expected one of airflow-kpo, generic',
    );
    expect(() => parseProfileName('toString')).toThrow(/unknown profile "toString"/);
  });
});

function pod(
  labels: Record<string, string>,
  extra: Partial<Pod['metadata']> = {},
  containers = ['base'],
): Pod {
  return {
    metadata: { name: 'p', namespace: 'ns', labels, ...extra },
    spec: { containers: containers.map((name) => ({ name })) },
  };
}

const kpoLabels = {
  kubernetes_pod_operator: 'True',
  dag_id: 'etl',
  task_id: 'extract',
  run_id: 'scheduled__2026-04-09T0900000000-020f81fe0',
  try_number: '2',
};

describe('identifyPod (airflow-kpo)', () => {
  it('joins dag_id/task_id/run_id/map_index, with -1 for an unmapped task', () => {
    expect(identifyPod(pod(kpoLabels), 'airflow-kpo')).toEqual({
      kind: 'managed',
      identity: {
        profile: 'airflow-kpo',
        key: 'etl/extract/scheduled__2026-04-09T0900000000-020f81fe0/-1',
        tryNumber: 2,
        attempt: 1,
        labels: { dag_id: 'etl', task_id: 'extract', run_id: 'scheduled__2026-04-09T0900000000-020f81fe0' },
      },
    });
  });

  it('uses map_index and podwarden.io/attempt when present', () => {
    const result = identifyPod(pod({ ...kpoLabels, map_index: '12', [LABELS.attempt]: '3' }), 'airflow-kpo');
    expect(result.kind === 'managed' && result.identity).toMatchObject({
      key: 'etl/extract/scheduled__2026-04-09T0900000000-020f81fe0/12',
      attempt: 3,
      labels: { map_index: '12' },
    });
  });

  it('calls a pod without the selector label unmanaged, saying why', () => {
    const { kubernetes_pod_operator: _, ...rest } = kpoLabels;
    expect(identifyPod(pod(rest), 'airflow-kpo')).toEqual({
      kind: 'unmanaged',
      why: 'label kubernetes_pod_operator is missing; profile airflow-kpo manages pods with kubernetes_pod_operator=True',
    });
    const other = identifyPod(pod({ ...kpoLabels, kubernetes_pod_operator: 'true' }), 'airflow-kpo');
    expect(other).toMatchObject({
      kind: 'unmanaged',
      why: expect.stringContaining('kubernetes_pod_operator="true"'),
    });
    expect(identifyPod({ metadata: {} }, 'airflow-kpo').kind).toBe('unmanaged');
  });

  it.each([
    [{ dag_id: undefined }, 'identity label dag_id is missing'],
    [{ task_id: '' }, 'identity label task_id is empty'],
    [{ run_id: 'a/b' }, 'identity label run_id="a/b" is not a valid label value'],
    [{ map_index: '-1' }, 'identity label map_index="-1" is not a valid label value'],
    [{ map_index: 'x1' }, 'identity label map_index="x1" is not a whole number'],
    [{ try_number: undefined }, 'try label try_number is missing'],
    [{ try_number: 'one' }, 'try label try_number="one" is not a whole number'],
    [{ [LABELS.attempt]: '0' }, 'label podwarden.io/attempt="0" is not a positive whole number'],
  ])('calls a selected pod with %j malformed', (change, problem) => {
    const labels: Record<string, string> = { ...kpoLabels };
    for (const [key, value] of Object.entries(change)) {
      if (value === undefined) delete labels[key];
      else labels[key] = value;
    }
    expect(identifyPod(pod(labels), 'airflow-kpo')).toEqual({ kind: 'malformed', problem });
  });
});

describe('identifyPod (generic)', () => {
  it('uses podwarden.io/task and podwarden.io/try', () => {
    const labels = { [LABELS.managed]: 'true', [LABELS.task]: 'nightly-report', [LABELS.try]: '1' };
    expect(identifyPod(pod(labels), 'generic')).toEqual({
      kind: 'managed',
      identity: {
        profile: 'generic',
        key: 'nightly-report',
        tryNumber: 1,
        attempt: 1,
        labels: { [LABELS.task]: 'nightly-report' },
      },
    });
    expect(identifyPod(pod(kpoLabels), 'generic').kind).toBe('unmanaged');
    expect(identifyPod(pod({ [LABELS.managed]: 'true', [LABELS.try]: '1' }), 'generic')).toEqual({
      kind: 'malformed',
      problem: 'identity label podwarden.io/task is missing',
    });
  });
});

describe('orchestratorTaskKey', () => {
  it('normalises raw Airflow values exactly as the labels of that task’s pods', () => {
    const raw = { dag_id: 'etl', task_id: 'extract', run_id: 'scheduled__2026-04-09T09:00:00+00:00' };
    const podKey = identifyPod(pod(kpoLabels), 'airflow-kpo');
    expect(podKey.kind === 'managed' && podKey.identity.key).toBe(orchestratorTaskKey('airflow-kpo', raw));
    expect(orchestratorTaskKey('airflow-kpo', { ...raw, map_index: -1 })).toBe(
      'etl/extract/scheduled__2026-04-09T0900000000-020f81fe0/-1',
    );
    expect(orchestratorTaskKey('airflow-kpo', { ...raw, map_index: null })).toMatch(/\/-1$/);
    expect(orchestratorTaskKey('airflow-kpo', { ...raw, map_index: '4' })).toMatch(/\/4$/);
    expect(orchestratorTaskKey('airflow-kpo', { ...raw, map_index: 4 })).toMatch(/\/4$/);
  });

  it('matches any pod labelled the way Airflow labels it', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        fc.integer({ min: -1, max: 5000 }),
        (dagId, taskId, runId, mapIndex) => {
          fc.pre(
            [dagId, taskId, runId].every(
              (value) => value.isWellFormed() && /^[a-zA-Z0-9]/.test(safeLabelValue(value)),
            ),
          );
          const labels: Record<string, string> = {
            kubernetes_pod_operator: 'True',
            dag_id: safeLabelValue(dagId),
            task_id: safeLabelValue(taskId),
            run_id: safeLabelValue(runId),
            try_number: '1',
          };
          if (mapIndex >= 0) labels.map_index = String(mapIndex);
          const result = identifyPod(pod(labels), 'airflow-kpo');
          expect(result.kind === 'managed' && result.identity.key).toBe(
            orchestratorTaskKey('airflow-kpo', {
              dag_id: dagId,
              task_id: taskId,
              run_id: runId,
              map_index: mapIndex,
            }),
          );
        },
      ),
    );
  });

  it('uses the task id for the generic profile', () => {
    expect(orchestratorTaskKey('generic', { dag_id: 'd', task_id: 'nightly-report', run_id: 'r' })).toBe(
      'nightly-report',
    );
  });

  it('rejects bad input with a message naming the field', () => {
    const raw = { dag_id: 'etl', task_id: 'extract', run_id: 'r1' };
    expect(() => orchestratorTaskKey('airflow-kpo', { ...raw, dag_id: '' })).toThrow(
      'task instance field dag_id must be a non-empty string, got ""',
    );
    expect(() => orchestratorTaskKey('airflow-kpo', { ...raw, run_id: 7 as unknown as string })).toThrow(
      /run_id/,
    );
    expect(() => orchestratorTaskKey('airflow-kpo', { ...raw, map_index: -2 })).toThrow(
      'map_index must be a whole number >= -1 (or absent), got -2',
    );
    expect(() => orchestratorTaskKey('airflow-kpo', { ...raw, map_index: 1.5 })).toThrow(/map_index/);
    expect(() => orchestratorTaskKey('airflow-kpo', { ...raw, map_index: 'three' })).toThrow(/"three"/);
    expect(() => orchestratorTaskKey('nope' as 'generic', raw)).toThrow(/unknown profile "nope"/);
  });
});

describe('mainContainerName', () => {
  it('is base for airflow-kpo', () => {
    expect(mainContainerName(pod(kpoLabels, {}, ['airflow-xcom-sidecar', 'base']), 'airflow-kpo')).toBe(
      'base',
    );
  });

  it('is the annotated container, else the first, for generic', () => {
    expect(mainContainerName(pod({}, {}, ['app', 'proxy']), 'generic')).toBe('app');
    const annotated = pod({}, { annotations: { [ANNOTATIONS.mainContainer]: 'worker' } }, [
      'proxy',
      'worker',
    ]);
    expect(mainContainerName(annotated, 'generic')).toBe('worker');
  });
});

describe('readOverrides', () => {
  it('defaults to recreate always, no pull deadline override, unprotected', () => {
    expect(readOverrides(pod({}))).toEqual({
      overrides: { recreate: 'always', protect: false },
      problems: [],
    });
  });

  it('reads the annotations', () => {
    const annotated = pod(
      {},
      {
        annotations: {
          [ANNOTATIONS.recreate]: 'before-start',
          [ANNOTATIONS.pullDeadline]: '15m',
          [ANNOTATIONS.protect]: 'true',
        },
      },
    );
    expect(readOverrides(annotated)).toEqual({
      overrides: { recreate: 'before-start', pullDeadlineMs: 900_000, protect: true },
      problems: [],
    });
  });

  it('keeps defaults for bad values and lists each problem', () => {
    const annotated = pod(
      {},
      {
        annotations: {
          [ANNOTATIONS.recreate]: 'sometimes',
          [ANNOTATIONS.pullDeadline]: 'soon',
          [ANNOTATIONS.protect]: 'yes',
        },
      },
    );
    const { overrides, problems } = readOverrides(annotated);
    expect(overrides).toEqual({ recreate: 'always', protect: true });
    expect(problems).toEqual([
      'annotation podwarden.io/recreate="sometimes" is not one of always, before-start, never; using always',
      'annotation podwarden.io/pull-deadline="soon" is not a duration from 1s to 30 days like 90s, 15m or 2h; ignored, the policy default applies',
      'annotation podwarden.io/protect="yes" is not true or false; treating the pod as protected',
    ]);
  });
});
