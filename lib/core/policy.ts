/** Cluster-wide knobs of the decision engine and the reaper. Every duration is in milliseconds. */
export interface Policy {
  /** Re-creates allowed per try after disruptions (separate from the orchestrator's retries). */
  recreateBudget: number;
  /** Back-off before re-create n is base * 2^(n-1): 2 s, 4 s, 8 s by default. */
  recreateBackoffBaseMs: number;
  /** How long a vanished pod without disruption evidence waits for a late `Preempted` event. */
  goneGraceMs: number;
  /** Image-pull re-checks: 10 s, 20 s, 40 s ... capped (the kubelet's own back-off cap). */
  pullRecheckBaseMs: number;
  pullRecheckCapMs: number;
  /** Default deadline from the first transient pull error; annotation `podwarden.io/pull-deadline`. */
  pullDeadlineMs: number;
  /** A pod still not started after this long (for reasons other than image pulls) fails the task. */
  startupDeadlineMs: number;
  /** Main container terminated but pod not terminal for this long: sidecar zombie. */
  sidecarGraceMs: number;
  /** Pods of a finished task still present after this long are reaped. */
  finishedGraceMs: number;
  /** Every unfinished task is re-read at least this often, even when no event arrives (lost events). */
  resyncMs: number;
  /** The reaper never touches pods younger than this. */
  reaperMinAgeMs: number;
  /**
   * A reaper pass deletes at most this percentage of the managed pods it listed (or the deployment's
   * `reaperMaxDeletes`, if larger): a large cleanup takes a few passes, a wrong rule cannot empty a cluster.
   */
  reaperMaxDeletesPercent: number;
  /** How long a finished task's record is kept before DynamoDB's TTL removes it. */
  retentionMs: number;
}

export const DEFAULT_POLICY: Readonly<Policy> = Object.freeze({
  recreateBudget: 3,
  recreateBackoffBaseMs: 2_000,
  goneGraceMs: 60_000,
  pullRecheckBaseMs: 10_000,
  pullRecheckCapMs: 300_000,
  pullDeadlineMs: 600_000,
  startupDeadlineMs: 3_600_000,
  sidecarGraceMs: 300_000,
  finishedGraceMs: 600_000,
  resyncMs: 600_000,
  reaperMinAgeMs: 120_000,
  reaperMaxDeletesPercent: 10,
  retentionMs: 7 * 24 * 3_600_000,
});

export class PolicyError extends Error {
  override name = 'PolicyError';
}

const SECOND = 1_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** No duration Podwarden reads is longer than this: past it, a value is a typo or an overflow. */
export const MAX_DURATION_MS = 366 * DAY;

/**
 * The range each knob accepts. A zero where zero would switch a guard off (the reaper's minimum age,
 * a grace, a deadline, the resync) is refused: such a value is never what anyone meant.
 */
export const POLICY_RANGES: Readonly<
  Record<keyof Policy, { min: number; max: number; unit: 'count' | 'ms' }>
> = Object.freeze({
  recreateBudget: { min: 0, max: 100, unit: 'count' },
  recreateBackoffBaseMs: { min: 1, max: HOUR, unit: 'ms' },
  goneGraceMs: { min: SECOND, max: DAY, unit: 'ms' },
  pullRecheckBaseMs: { min: 1, max: HOUR, unit: 'ms' },
  pullRecheckCapMs: { min: 1, max: DAY, unit: 'ms' },
  pullDeadlineMs: { min: SECOND, max: 30 * DAY, unit: 'ms' },
  startupDeadlineMs: { min: SECOND, max: 30 * DAY, unit: 'ms' },
  sidecarGraceMs: { min: SECOND, max: 30 * DAY, unit: 'ms' },
  finishedGraceMs: { min: SECOND, max: 30 * DAY, unit: 'ms' },
  resyncMs: { min: SECOND, max: DAY, unit: 'ms' },
  reaperMinAgeMs: { min: SECOND, max: 30 * DAY, unit: 'ms' },
  reaperMaxDeletesPercent: { min: 0, max: 100, unit: 'count' },
  retentionMs: { min: 60 * SECOND, max: MAX_DURATION_MS, unit: 'ms' },
});

/** The problem with one knob's value, naming it and its allowed range; undefined when it is fine. */
export function policyFieldProblem(name: string, value: unknown): string | undefined {
  if (!Object.hasOwn(POLICY_RANGES, name)) {
    return `unknown policy field ${JSON.stringify(name)} (known: ${Object.keys(POLICY_RANGES).join(', ')})`;
  }
  const { min, max, unit } = POLICY_RANGES[name as keyof Policy];
  const range = unit === 'count' ? `${min} to ${max}` : `${min} to ${max} (milliseconds)`;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
    return `policy.${name} must be a whole number from ${range}, got ${shown}`;
  }
  return undefined;
}

/** Merges overrides into the defaults and rejects values that would make the engine misbehave. */
export function makePolicy(overrides: Partial<Policy> = {}): Policy {
  const policy: Policy = { ...DEFAULT_POLICY, ...overrides };
  for (const [name, value] of Object.entries(policy)) {
    const problem = policyFieldProblem(name, value);
    if (problem) throw new PolicyError(problem);
  }
  if (policy.pullRecheckCapMs < policy.pullRecheckBaseMs) {
    throw new PolicyError('policy.pullRecheckCapMs must be >= policy.pullRecheckBaseMs');
  }
  return policy;
}

const DURATION = /^(\d{1,15})(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * Parses `90`, `90s`, `15m`, `2h`, `500ms` (a bare number is seconds, as in Kubernetes). Anything
 * else, and anything longer than MAX_DURATION_MS (an overflow, `Infinity`, 10^21 hours), is
 * undefined: the caller reports it with its own name and keeps its default.
 */
export function parseDuration(text: string): number | undefined {
  if (typeof text !== 'string') return undefined;
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * (UNIT_MS[match[2] ?? 's'] ?? 1_000);
  return Number.isSafeInteger(ms) && ms <= MAX_DURATION_MS ? ms : undefined;
}
