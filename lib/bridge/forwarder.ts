import {
  type BackoffPolicy,
  type BatchLimits,
  EVENTBRIDGE_LIMITS,
  isRetryableEntryError,
  planBatch,
  retryDelayMs,
} from './batching.ts';
import type { BusEntry, OutboundItem } from './entries.ts';
import type { Logger } from './logger.ts';
import type { BridgeMetrics } from './metrics.ts';

export type EntryOutcome = { ok: true } | { ok: false; code: string; message?: string };

/** PutEvents as the forwarder needs it: one outcome per entry, in order; rejects when the whole call fails. */
export interface PutEventsPort {
  putEvents(entries: BusEntry[]): Promise<EntryOutcome[]>;
}

/** Whole-call errors a retry cannot fix; everything else (throttling, 5xx, network) is retried. */
const PERMANENT_CALL_ERRORS = new Set(['ValidationException', 'InvalidArgument']);

export function isRetryableCallError(error: unknown): boolean {
  const name = error instanceof Error ? error.name : '';
  return !PERMANENT_CALL_ERRORS.has(name);
}

export type GiveUpReason = 'rejected' | 'retries-exhausted' | 'too-large' | 'queue-full' | 'shutdown';

export interface ForwarderOptions {
  port: PutEventsPort;
  metrics: BridgeMetrics;
  log: Logger;
  /** PutEvents calls in flight at once (distinct keys only, so order per key still holds). */
  concurrency?: number;
  /** Sends per entry, the first included, before it is given up on. */
  maxAttempts?: number;
  backoff?: BackoffPolicy;
  /** Entries waiting at most; beyond it new entries are given up on (counted and logged). */
  maxQueue?: number;
  /** How long a lone fresh entry waits for company before a call goes out with less than a full batch. */
  lingerMs?: number;
  limits?: BatchLimits;
  now?: () => number;
  random?: () => number;
}

interface Queued {
  key: string;
  size: number;
  inFlight: boolean;
  notBefore: number;
  item: OutboundItem;
  enqueuedAt: number;
  attempts: number;
  settled: boolean;
}

interface GiveUp {
  queued: Queued;
  reason: GiveUpReason;
  code?: string;
  message?: string;
}

/**
 * Delivers entries to EventBridge in batches, retrying only what failed, never reordering two entries
 * of the same pod, and accounting for every entry it gives up on (a metric and a log line with counts).
 */
export class Forwarder {
  readonly #port: PutEventsPort;
  readonly #metrics: BridgeMetrics;
  readonly #log: Logger;
  readonly #concurrency: number;
  readonly #maxAttempts: number;
  readonly #backoff: BackoffPolicy;
  readonly #maxQueue: number;
  readonly #lingerMs: number;
  readonly #limits: BatchLimits;
  readonly #now: () => number;
  readonly #random: () => number;
  #queue: Queued[] = [];
  #inFlightCalls = 0;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #pumpScheduled = false;
  #flushing = false;
  #closed = false;
  #drainWaiters: Array<() => void> = [];

  constructor(options: ForwarderOptions) {
    this.#port = options.port;
    this.#metrics = options.metrics;
    this.#log = options.log;
    this.#concurrency = positive(options.concurrency ?? 4, 'concurrency');
    this.#maxAttempts = positive(options.maxAttempts ?? 8, 'maxAttempts');
    this.#backoff = options.backoff ?? { baseMs: 200, maxMs: 20_000 };
    this.#maxQueue = positive(options.maxQueue ?? 100_000, 'maxQueue');
    this.#lingerMs = options.lingerMs ?? 20;
    this.#limits = options.limits ?? EVENTBRIDGE_LIMITS;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#metrics.trackQueue({
      depth: () => this.#queue.length,
      oldestAgeSeconds: () => {
        const oldest = this.#queue[0];
        return oldest ? Math.max(0, (this.#now() - oldest.item.observedAt) / 1000) : 0;
      },
    });
  }

  /** Entries accepted but not yet delivered or given up on. */
  get pending(): number {
    return this.#queue.length;
  }

  enqueue(item: OutboundItem): boolean {
    const queued: Queued = {
      key: item.key,
      size: item.size,
      inFlight: false,
      notBefore: 0,
      item,
      enqueuedAt: this.#now(),
      attempts: 0,
      settled: false,
    };
    if (this.#closed) {
      this.#giveUp([{ queued, reason: 'shutdown' }]);
      return false;
    }
    if (item.size > this.#limits.maxBytes) {
      this.#giveUp([
        { queued, reason: 'too-large', message: `${item.size} bytes > ${this.#limits.maxBytes}` },
      ]);
      return false;
    }
    if (this.#queue.length >= this.#maxQueue) {
      this.#giveUp([{ queued, reason: 'queue-full', message: `${this.#queue.length} entries waiting` }]);
      return false;
    }
    this.#queue.push(queued);
    this.#schedulePump();
    return true;
  }

  /**
   * Sends everything queued without lingering and waits until the queue is empty or `timeoutMs` has
   * passed; what is still undelivered then is given up on (reason `shutdown`). New entries are refused.
   */
  async flush(timeoutMs: number): Promise<{ undelivered: number }> {
    this.#flushing = true;
    this.#closed = true;
    this.#schedulePump();
    if (this.#queue.length > 0) {
      let timeout: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.#drainWaiters.push(resolve)),
        new Promise<void>((resolve) => {
          timeout = setTimeout(resolve, timeoutMs);
        }),
      ]);
      clearTimeout(timeout);
    }
    const left = this.#queue;
    this.#queue = [];
    this.#giveUp(left.map((queued) => ({ queued, reason: 'shutdown' as const })));
    this.#clearTimer();
    return { undelivered: left.length };
  }

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    // Entries a watch delivers in one chunk arrive in one tick: gather them before planning.
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#inFlightCalls < this.#concurrency) {
      const now = this.#now();
      const picked = planBatch(this.#queue, now, this.#limits);
      if (picked.length === 0) break;
      const first = this.#queue[picked[0]!]!;
      if (
        !this.#flushing &&
        picked.length < this.#limits.maxEntries &&
        first.attempts === 0 &&
        first.enqueuedAt + this.#lingerMs > now
      ) {
        this.#wakeAt(first.enqueuedAt + this.#lingerMs);
        return;
      }
      const batch = picked.map((index) => this.#queue[index]!);
      for (const queued of batch) queued.inFlight = true;
      this.#inFlightCalls += 1;
      void this.#send(batch);
    }
    // Entries held back only by an earlier entry of their key move when that one settles; entries
    // backing off need a timer.
    const now = this.#now();
    let earliest = Number.POSITIVE_INFINITY;
    for (const queued of this.#queue) {
      if (!queued.inFlight && queued.notBefore > now && queued.notBefore < earliest)
        earliest = queued.notBefore;
    }
    if (earliest !== Number.POSITIVE_INFINITY) this.#wakeAt(earliest);
  }

  #wakeAt(at: number): void {
    if (this.#timer && this.#timerAt <= at) return;
    this.#clearTimer();
    this.#timerAt = at;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = Number.POSITIVE_INFINITY;
        this.#pump();
      },
      Math.max(0, at - this.#now()),
    );
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  async #send(batch: Queued[]): Promise<void> {
    const givenUp: GiveUp[] = [];
    let outcomes: EntryOutcome[] | undefined;
    let callError: unknown;
    try {
      outcomes = await this.#port.putEvents(batch.map((queued) => queued.item.entry));
    } catch (error) {
      callError = error;
    }
    this.#inFlightCalls -= 1;
    if (batch.every((queued) => queued.settled)) {
      // Given up on by a flush that timed out while this call was in flight: already accounted for.
      this.#afterChange();
      return;
    }
    const now = this.#now();
    if (outcomes) {
      const failed = outcomes.filter((outcome) => !outcome.ok).length;
      this.#metrics.calls.inc({ outcome: failed === 0 ? 'ok' : 'partial' });
      batch.forEach((queued, index) => {
        const outcome = outcomes[index] ?? {
          ok: false,
          code: 'MissingResult',
          message: 'no result for this entry',
        };
        if (outcome.ok) this.#delivered(queued, now);
        else
          this.#failed(
            queued,
            outcome.code,
            outcome.message,
            isRetryableEntryError(outcome.code),
            now,
            givenUp,
          );
      });
    } else {
      this.#metrics.calls.inc({ outcome: 'error' });
      const code = callError instanceof Error ? callError.name : 'Error';
      const message = callError instanceof Error ? callError.message : String(callError);
      const retryable = isRetryableCallError(callError);
      this.#log.warn('PutEvents call failed', {
        code,
        errorMessage: message,
        entries: batch.length,
        retryable,
      });
      for (const queued of batch) this.#failed(queued, code, message, retryable, now, givenUp);
    }
    this.#queue = this.#queue.filter((queued) => !queued.settled);
    this.#giveUp(givenUp);
    this.#afterChange();
  }

  #delivered(queued: Queued, now: number): void {
    queued.settled = true;
    this.#metrics.forwarded.inc({ detail_type: queued.item.entry.DetailType });
    this.#metrics.lag.observe(Math.max(0, now - queued.item.observedAt) / 1000);
  }

  #failed(
    queued: Queued,
    code: string,
    message: string | undefined,
    retryable: boolean,
    now: number,
    givenUp: GiveUp[],
  ): void {
    queued.attempts += 1;
    if (!retryable) {
      givenUp.push({ queued, reason: 'rejected', code, ...(message ? { message } : {}) });
    } else if (queued.attempts >= this.#maxAttempts) {
      givenUp.push({ queued, reason: 'retries-exhausted', code, ...(message ? { message } : {}) });
    } else {
      queued.inFlight = false;
      queued.notBefore = now + retryDelayMs(queued.attempts, this.#backoff, this.#random);
      this.#metrics.retried.inc();
      return;
    }
    queued.settled = true;
  }

  /** Every entry given up on is counted in the metric and reported in one log line per reason and code. */
  #giveUp(givenUp: GiveUp[]): void {
    const groups = new Map<string, GiveUp[]>();
    for (const entry of givenUp) {
      entry.queued.settled = true;
      const group = `${entry.reason}\u0000${entry.code ?? ''}`;
      groups.set(group, [...(groups.get(group) ?? []), entry]);
    }
    for (const entries of groups.values()) {
      const [first] = entries;
      if (!first) continue;
      this.#metrics.failed.inc({ reason: first.reason }, entries.length);
      this.#log.error('entries undeliverable', {
        reason: first.reason,
        count: entries.length,
        ...(first.code ? { errorCode: first.code } : {}),
        ...(first.message ? { errorMessage: first.message } : {}),
        detailTypes: countBy(entries.map((entry) => entry.queued.item.entry.DetailType)),
        pods: [...new Set(entries.map((entry) => entry.queued.key))].slice(0, 10),
        attempts: first.queued.attempts,
      });
    }
  }

  #afterChange(): void {
    if (this.#queue.length === 0) {
      for (const resolve of this.#drainWaiters.splice(0)) resolve();
      if (this.#closed) this.#clearTimer();
    }
    this.#pump();
  }
}

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`forwarder ${name} must be a whole number >= 1, got ${value}`);
  return value;
}
