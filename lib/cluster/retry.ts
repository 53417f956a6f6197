import { ClusterError } from '../core/ports.ts';

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  /** Cap on one wait. A Retry-After longer than this is not waited out but surfaced to the caller. */
  maxDelayMs: number;
  sleep: (ms: number) => Promise<void>;
  /** In [0, 1); spreads the waits of concurrent callers. */
  random: () => number;
}

export interface RetryNotice {
  attempt: number;
  delayMs: number;
  error: ClusterError;
}

/** Exponential back-off with equal jitter: half the step is fixed, half random. */
export function backoffDelay(
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs' | 'random'>,
  attempt: number,
) {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(step / 2 + (step / 2) * policy.random());
}

/**
 * Runs `operation` until it succeeds, fails with something other than a retryable ClusterError, or
 * the attempts are spent. Retry-After, when the server sent one, replaces the computed wait.
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  operation: () => Promise<T>,
  onRetry?: (notice: RetryNotice) => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (!(error instanceof ClusterError) || error.kind !== 'retryable') throw error;
      const delayMs = error.retryAfterMs ?? backoffDelay(policy, attempt);
      if (attempt >= policy.attempts || delayMs > policy.maxDelayMs) {
        // Surfaced with its Retry-After intact, so the caller can schedule the next try instead.
        const why =
          attempt >= policy.attempts
            ? `gave up after ${attempt} attempts`
            : `server asked to wait ${delayMs} ms`;
        throw new ClusterError('retryable', `${error.message} (${why})`, error.status, error.retryAfterMs);
      }
      onRetry?.({ attempt, delayMs, error });
      await policy.sleep(delayMs);
    }
  }
}
