import { createHash } from 'node:crypto';
import type { Pod } from './pod.ts';
import { POLICY_RANGES, parseDuration } from './policy.ts';
import type { ProfileName, TaskOverrides } from './task.ts';

/** Kubernetes' limit on a label value, which Airflow's `make_safe_label_value` enforces too. */
const MAX_LABEL_LENGTH = 63;
const HASH_LENGTH = 9;

/**
 * Airflow's `make_safe_label_value`, character for character:
 *
 * ```python
 * safe_label = re.sub(r"^[^a-z0-9A-Z]*|[^a-zA-Z0-9_\-\.]|[^a-z0-9A-Z]*$", "", string)
 * if len(safe_label) > 63 or string != safe_label:
 *     safe_hash = md5(string.encode()).hexdigest()[:9]
 *     safe_label = safe_label[:53] + "-" + safe_hash
 * ```
 *
 * The regex drops every character outside `[a-zA-Z0-9_.-]`, then any non-alphanumeric run at either
 * end (what survives is ASCII, so Python's code-point length equals the JS length). Doing it in two
 * linear passes avoids reproducing Python's empty-match rules for `re.sub`, and the quadratic
 * backtracking of `[^a-z0-9A-Z]*$` on long inputs.
 *
 * @throws Error for a string with a lone UTF-16 surrogate: Python's `str.encode()` raises on it too,
 *   and there is no UTF-8 to hash.
 */
export function safeLabelValue(value: string): string {
  if (!value.isWellFormed()) {
    throw new Error(`cannot make a label value of ${JSON.stringify(value)}: it has a lone UTF-16 surrogate`);
  }
  const allowed = value.replace(/[^a-zA-Z0-9_.-]/g, '');
  let start = 0;
  let end = allowed.length;
  while (start < end && !isAlphanumeric(allowed.charCodeAt(start))) start++;
  while (end > start && !isAlphanumeric(allowed.charCodeAt(end - 1))) end--;
  const safe = allowed.slice(start, end);
  if (safe.length <= MAX_LABEL_LENGTH && safe === value) return safe;
  const hash = createHash('md5').update(value, 'utf8').digest('hex').slice(0, HASH_LENGTH);
  return `${safe.slice(0, MAX_LABEL_LENGTH - HASH_LENGTH - 1)}-${hash}`;
}

function isAlphanumeric(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

/** Kubernetes' syntax for a label value (empty is allowed by Kubernetes; identity labels reject it). */
const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/;

export function isValidLabelValue(value: string): boolean {
  return value.length <= MAX_LABEL_LENGTH && LABEL_VALUE.test(value);
}

/** Podwarden's own labels on the pods it re-creates. */
export const LABELS = {
  attempt: 'podwarden.io/attempt',
  managed: 'podwarden.io/managed',
  task: 'podwarden.io/task',
  try: 'podwarden.io/try',
} as const;

/** Per-pod knobs users set as annotations. */
export const ANNOTATIONS = {
  protect: 'podwarden.io/protect',
  recreate: 'podwarden.io/recreate',
  pullDeadline: 'podwarden.io/pull-deadline',
  mainContainer: 'podwarden.io/main-container',
} as const;

export interface Profile {
  name: ProfileName;
  /** Labels a pod must carry, with these exact values, to be managed under this profile. */
  selector: Record<string, string>;
  /** `selector` in Kubernetes' label-selector syntax, for list and watch calls. */
  labelSelector: string;
  /** Labels whose values, joined with `/` in this order, make the task key. */
  identityLabels: readonly string[];
  /** Identity labels that may be absent, with the value the key uses then. */
  optionalIdentityLabels: Readonly<Record<string, string>>;
  /** Label holding the orchestrator's try number. */
  tryLabel: string;
  /** The main container's fixed name; undefined: the annotation, else the first container. */
  mainContainer?: string;
  /** Annotation naming the main container, for profiles without a fixed one. */
  mainContainerAnnotation?: string;
}

function selectorText(selector: Record<string, string>): string {
  return Object.entries(selector)
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
}

function makeProfile(profile: Omit<Profile, 'labelSelector'>): Profile {
  return Object.freeze({ ...profile, labelSelector: selectorText(profile.selector) });
}

/** Airflow's KubernetesPodOperator leaves `map_index` off pods of unmapped tasks (map_index -1). */
const UNMAPPED_INDEX = '-1';

export const PROFILES: Readonly<Record<ProfileName, Profile>> = Object.freeze({
  'airflow-kpo': makeProfile({
    name: 'airflow-kpo',
    selector: { kubernetes_pod_operator: 'True' },
    identityLabels: ['dag_id', 'task_id', 'run_id', 'map_index'],
    optionalIdentityLabels: { map_index: UNMAPPED_INDEX },
    tryLabel: 'try_number',
    mainContainer: 'base',
  }),
  generic: makeProfile({
    name: 'generic',
    selector: { [LABELS.managed]: 'true' },
    identityLabels: [LABELS.task],
    optionalIdentityLabels: {},
    tryLabel: LABELS.try,
    mainContainerAnnotation: ANNOTATIONS.mainContainer,
  }),
});

export const PROFILE_NAMES = Object.keys(PROFILES) as ProfileName[];
export const DEFAULT_PROFILE: ProfileName = 'airflow-kpo';

export function isProfileName(text: string): text is ProfileName {
  return Object.hasOwn(PROFILES, text);
}

export function parseProfileName(text: string): ProfileName {
  if (isProfileName(text)) return text;
  throw new Error(`unknown profile ${JSON.stringify(text)}: expected one of ${PROFILE_NAMES.join(', ')}`);
}

export interface Identity {
  profile: ProfileName;
  /** The identity label values joined with `/` (label values cannot contain `/`). */
  key: string;
  tryNumber: number;
  /** Podwarden's attempt number: 1 for the orchestrator's own pod. */
  attempt: number;
  /** The identity labels the key was made of, as found on the pod (optional ones only if present). */
  labels: Record<string, string>;
}

export type IdentifyResult =
  | { kind: 'managed'; identity: Identity }
  | { kind: 'unmanaged'; why: string }
  | { kind: 'malformed'; problem: string };

const WHOLE_NUMBER = /^(?:0|[1-9][0-9]*)$/;
const POSITIVE_NUMBER = /^[1-9][0-9]*$/;

function describeLabel(label: string, value: string | undefined): string {
  return value === undefined ? `label ${label} is missing` : `label ${label}=${JSON.stringify(value)}`;
}

/** Decides whether `pod` is a task under `profile`, and which task, try and attempt it is. */
export function identifyPod(pod: Pod, profile: ProfileName): IdentifyResult {
  const spec = PROFILES[profile];
  const labels = pod.metadata?.labels ?? {};
  for (const [label, wanted] of Object.entries(spec.selector)) {
    const value = labels[label];
    if (value !== wanted) {
      return {
        kind: 'unmanaged',
        why: `${describeLabel(label, value)}; profile ${profile} manages pods with ${spec.labelSelector}`,
      };
    }
  }

  const identityLabels: Record<string, string> = {};
  const keyParts: string[] = [];
  for (const label of spec.identityLabels) {
    const value = labels[label];
    const fallback = spec.optionalIdentityLabels[label];
    if (value === undefined && fallback !== undefined) {
      keyParts.push(fallback);
      continue;
    }
    if (value === undefined) return { kind: 'malformed', problem: `identity label ${label} is missing` };
    if (value === '') return { kind: 'malformed', problem: `identity label ${label} is empty` };
    if (typeof value !== 'string' || !isValidLabelValue(value)) {
      return {
        kind: 'malformed',
        problem: `identity ${describeLabel(label, String(value))} is not a valid label value`,
      };
    }
    if (fallback !== undefined && !WHOLE_NUMBER.test(value)) {
      // Only map_index is optional; Airflow writes it as str() of a non-negative int.
      return { kind: 'malformed', problem: `identity ${describeLabel(label, value)} is not a whole number` };
    }
    identityLabels[label] = value;
    keyParts.push(value);
  }

  const tryText = labels[spec.tryLabel];
  if (typeof tryText === 'string' && WHOLE_NUMBER.test(tryText) && !Number.isSafeInteger(Number(tryText))) {
    return {
      kind: 'malformed',
      problem: `try ${describeLabel(spec.tryLabel, tryText.length > 20 ? `${tryText.slice(0, 20)}...` : tryText)} is not a whole number up to ${Number.MAX_SAFE_INTEGER}`,
    };
  }
  if (typeof tryText !== 'string' || !WHOLE_NUMBER.test(tryText)) {
    return {
      kind: 'malformed',
      problem: `try ${describeLabel(spec.tryLabel, tryText)}${tryText === undefined ? '' : ' is not a whole number'}`,
    };
  }
  const attemptText = labels[LABELS.attempt];
  if (
    attemptText !== undefined &&
    (typeof attemptText !== 'string' ||
      !POSITIVE_NUMBER.test(attemptText) ||
      !Number.isSafeInteger(Number(attemptText)))
  ) {
    return {
      kind: 'malformed',
      problem: `${describeLabel(LABELS.attempt, attemptText)} is not a positive whole number`,
    };
  }

  return {
    kind: 'managed',
    identity: {
      profile,
      key: keyParts.join('/'),
      tryNumber: Number(tryText),
      attempt: attemptText === undefined ? 1 : Number(attemptText),
      labels: identityLabels,
    },
  };
}

export interface RawTaskInstance {
  dag_id: string;
  task_id: string;
  run_id: string;
  map_index?: number | string | null;
}

function normaliseMapIndex(mapIndex: RawTaskInstance['map_index']): string {
  if (mapIndex === undefined || mapIndex === null) return UNMAPPED_INDEX;
  const number =
    typeof mapIndex === 'number' ? mapIndex : /^-?[0-9]+$/.test(mapIndex.trim()) ? Number(mapIndex) : NaN;
  if (!Number.isSafeInteger(number) || number < -1) {
    throw new Error(`map_index must be a whole number >= -1 (or absent), got ${JSON.stringify(mapIndex)}`);
  }
  return String(number);
}

/**
 * The task key of an orchestrator's raw task instance (e.g. from `Task Instance Changed`), made the
 * way Airflow makes the labels of that task's pods, so it equals `identifyPod(pod).identity.key`.
 * For the generic profile `task_id` is the `podwarden.io/task` value, normalised the same way (a
 * valid label value comes back unchanged).
 */
export function orchestratorTaskKey(profile: ProfileName, raw: RawTaskInstance): string {
  if (raw === null || typeof raw !== 'object')
    throw new Error(`task instance must be an object, got ${String(raw)}`);
  const field = (name: 'dag_id' | 'task_id' | 'run_id'): string => {
    const value = raw[name];
    if (typeof value !== 'string' || value === '') {
      throw new Error(`task instance field ${name} must be a non-empty string, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  parseProfileName(profile);
  if (profile === 'generic') return safeLabelValue(field('task_id'));
  const mapIndex = normaliseMapIndex(raw.map_index);
  return [
    safeLabelValue(field('dag_id')),
    safeLabelValue(field('task_id')),
    safeLabelValue(field('run_id')),
    mapIndex,
  ].join('/');
}

/** Name of the container whose exit decides the task's outcome. */
export function mainContainerName(pod: Pod, profile: ProfileName): string {
  const spec = PROFILES[profile];
  if (spec.mainContainer !== undefined) return spec.mainContainer;
  const annotated = spec.mainContainerAnnotation && pod.metadata?.annotations?.[spec.mainContainerAnnotation];
  if (annotated) return annotated;
  return pod.spec?.containers?.[0]?.name ?? pod.status?.containerStatuses?.[0]?.name ?? '';
}

const RECREATE_POLICIES: readonly TaskOverrides['recreate'][] = ['always', 'before-start', 'never'];

export const DEFAULT_OVERRIDES: Readonly<TaskOverrides> = Object.freeze({
  recreate: 'always',
  protect: false,
});

/** Reads the per-pod annotations; a bad value keeps its default and is reported, never thrown. */
export function readOverrides(pod: Pod): { overrides: TaskOverrides; problems: string[] } {
  const annotations = pod.metadata?.annotations ?? {};
  const overrides: TaskOverrides = { ...DEFAULT_OVERRIDES };
  const problems: string[] = [];

  const recreate = annotations[ANNOTATIONS.recreate];
  if (recreate !== undefined) {
    const wanted = recreate.trim() as TaskOverrides['recreate'];
    if (RECREATE_POLICIES.includes(wanted)) overrides.recreate = wanted;
    else {
      problems.push(
        `annotation ${ANNOTATIONS.recreate}=${JSON.stringify(recreate)} is not one of ${RECREATE_POLICIES.join(', ')}; using ${DEFAULT_OVERRIDES.recreate}`,
      );
    }
  }

  const deadline = annotations[ANNOTATIONS.pullDeadline];
  if (deadline !== undefined) {
    const ms = parseDuration(deadline);
    const { min, max } = POLICY_RANGES.pullDeadlineMs;
    if (ms !== undefined && ms >= min && ms <= max) overrides.pullDeadlineMs = ms;
    else {
      const shown = deadline.length > 40 ? `${deadline.slice(0, 40)}...` : deadline;
      problems.push(
        `annotation ${ANNOTATIONS.pullDeadline}=${JSON.stringify(shown)} is not a duration from 1s to 30 days like 90s, 15m or 2h; ignored, the policy default applies`,
      );
    }
  }

  const protect = annotations[ANNOTATIONS.protect];
  if (protect !== undefined) {
    const text = protect.trim().toLowerCase();
    if (text === 'true') overrides.protect = true;
    else if (text !== 'false') {
      // Safe by default: someone tried to protect this pod, so an unreadable value protects it.
      overrides.protect = true;
      problems.push(
        `annotation ${ANNOTATIONS.protect}=${JSON.stringify(protect)} is not true or false; treating the pod as protected`,
      );
    }
  }

  return { overrides, problems };
}
