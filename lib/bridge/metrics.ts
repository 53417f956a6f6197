/**
 * The bridge's Prometheus series on prom-client, the client every Node service in a cluster uses,
 * with its default process and event-loop metrics (`process_resident_memory_bytes`,
 * `nodejs_eventloop_lag_seconds`, …) beside them. Each bridge has its own registry, so that two
 * bridges in one process (the tests) never count into each other.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** What the queue gauges read at scrape time: the forwarder's queue as it is then. */
export interface QueueReadings {
  depth(): number;
  oldestAgeSeconds(): number;
}

/** The bridge's series; names follow Prometheus conventions (`_total` counters, base units). */
export class BridgeMetrics {
  readonly registry = new Registry();
  #queue: QueueReadings = { depth: () => 0, oldestAgeSeconds: () => 0 };

  readonly seen = this.#counter(
    'podwarden_bridge_events_seen_total',
    'Watch notifications received, by resource and change.',
    ['resource', 'change'],
  );
  readonly ignored = this.#counter(
    'podwarden_bridge_events_ignored_total',
    'Notifications not forwarded, by reason.',
    ['reason'],
  );
  readonly forwarded = this.#counter(
    'podwarden_bridge_entries_forwarded_total',
    'Entries EventBridge accepted, by detail type.',
    ['detail_type'],
  );
  readonly failed = this.#counter(
    'podwarden_bridge_entries_failed_total',
    'Entries given up on (logged with counts), by reason: rejected, retries-exhausted, too-large, queue-full, shutdown.',
    ['reason'],
  );
  readonly retried = this.#counter(
    'podwarden_bridge_entries_retried_total',
    'Entries sent again after a failed attempt.',
  );
  readonly calls = this.#counter(
    'podwarden_bridge_putevents_calls_total',
    'PutEvents calls, by outcome: ok, partial, error.',
    ['outcome'],
  );
  readonly watchRestarts = this.#counter(
    'podwarden_bridge_watch_restarts_total',
    'Watch streams started again, by resource and reason: closed, error, gone (410, re-listed).',
    ['resource', 'reason'],
  );
  readonly relists = this.#counter(
    'podwarden_bridge_relists_total',
    'Full lists after start or a 410 Gone, by resource.',
    ['resource', 'via'],
  );
  readonly lag = new Histogram({
    name: 'podwarden_bridge_forward_lag_seconds',
    help: 'Time from a watch notification to EventBridge accepting its entry.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly queueDepth = this.#readAtScrape(
    'podwarden_bridge_queue_depth',
    'Entries waiting to be delivered (including in flight).',
    () => this.#queue.depth(),
  );
  readonly oldestQueuedAge = this.#readAtScrape(
    'podwarden_bridge_queue_oldest_age_seconds',
    'Age of the oldest entry not yet delivered.',
    () => this.#queue.oldestAgeSeconds(),
  );
  readonly isLeader = new Gauge({
    name: 'podwarden_bridge_is_leader',
    help: '1 while this replica holds the lease and forwards.',
    registers: [this.registry],
  });
  readonly leaderTransitions = this.#counter(
    'podwarden_bridge_leadership_changes_total',
    'Times this replica became or stopped being leader.',
    ['to'],
  );

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** The forwarder hands its queue over once; the gauges read it at each scrape. */
  trackQueue(readings: QueueReadings): void {
    this.#queue = readings;
  }

  /** The text exposition (format 0.0.4) served on /metrics. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  #counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  #readAtScrape(name: string, help: string, read: () => number): Gauge {
    return new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }
}

type Readable = Counter<string> | Gauge<string>;

/** The value of one series, by its exact labels (0 when it was never counted). */
export async function seriesValue(metric: Readable, labels: Record<string, string> = {}): Promise<number> {
  const wanted = Object.entries(labels);
  const { values } = await metric.get();
  const match = values.find(
    (sample) =>
      Object.keys(sample.labels).length === wanted.length &&
      wanted.every(([name, value]) => sample.labels[name] === value),
  );
  return match?.value ?? 0;
}

/** The sum over every label combination of a counter. */
export async function totalOf(metric: Counter<string>): Promise<number> {
  const { values } = await metric.get();
  return values.reduce((sum, sample) => sum + sample.value, 0);
}

/** The mean of what a histogram observed (0 before the first observation). */
export async function meanOf(metric: Histogram<string>): Promise<number> {
  const { values } = await metric.get();
  const read = (suffix: string) => values.find((sample) => sample.metricName?.endsWith(suffix))?.value ?? 0;
  const count = read('_count');
  return count === 0 ? 0 : read('_sum') / count;
}
