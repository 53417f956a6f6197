import { MAX_ENTRIES_PER_CALL, MAX_REQUEST_BYTES } from './entries.ts';

/** What the batch planner needs to know about a queued entry. */
export interface Plannable {
  key: string;
  size: number;
  /** Sent and not yet answered. */
  inFlight: boolean;
  /** Earliest time (epoch ms) a retry may go out. */
  notBefore: number;
}

export interface BatchLimits {
  maxEntries: number;
  maxBytes: number;
}

export const EVENTBRIDGE_LIMITS: Readonly<BatchLimits> = Object.freeze({
  maxEntries: MAX_ENTRIES_PER_CALL,
  maxBytes: MAX_REQUEST_BYTES,
});

/**
 * Picks the queue positions of the next PutEvents call, oldest first, within the count and size
 * limits. Per-key order holds through batching and retries because a key contributes at most its
 * oldest waiting entry, and nothing at all while one of its entries is in flight or backing off: a
 * later entry can never overtake an earlier one that might still fail and be retried.
 */
export function planBatch(
  queue: readonly Plannable[],
  now: number,
  limits: BatchLimits = EVENTBRIDGE_LIMITS,
): number[] {
  const picked: number[] = [];
  const blocked = new Set<string>();
  let bytes = 0;
  for (let index = 0; index < queue.length && picked.length < limits.maxEntries; index += 1) {
    const item = queue[index]!;
    if (blocked.has(item.key)) continue;
    // Whatever happens to this entry, later ones with its key wait behind it.
    blocked.add(item.key);
    if (item.inFlight || item.notBefore > now) continue;
    if (bytes + item.size > limits.maxBytes) continue;
    picked.push(index);
    bytes += item.size;
  }
  return picked;
}

/** Per-entry error codes EventBridge returns that a retry cannot fix. */
const PERMANENT_ENTRY_ERRORS = new Set([
  'MalformedDetail',
  'InvalidArgument',
  'ValidationException',
  'NotAuthorizedForSourceException',
  'NotAuthorizedForDetailTypeException',
  'AccessDeniedException',
]);

export function isRetryableEntryError(code: string): boolean {
  return !PERMANENT_ENTRY_ERRORS.has(code);
}

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/**
 * Delay before retry `attempt` (1 = the first retry): exponential, capped, with jitter in [50%, 100%]
 * so that replicas and batches that failed together do not retry together.
 */
export function retryDelayMs(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling * (0.5 + random() * 0.5));
}
