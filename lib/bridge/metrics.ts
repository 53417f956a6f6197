/**
 * A small Prometheus registry (text exposition format 0.0.4): counters, gauges and histograms with
 * labels. The bridge needs a handful of series, not a client library.
 */

type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((name) => `${name}="${escapeLabel(labels[name] ?? '')}"`)
    .join(',');
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

function series(name: string, key: string, value: number): string {
  return `${name}${key === '' ? '' : `{${key}}`} ${formatNumber(value)}`;
}

interface Metric {
  readonly name: string;
  render(): string[];
}

export class Counter implements Metric {
  readonly name: string;
  readonly help: string;
  readonly #values = new Map<string, number>();
  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }
  inc(labels: Labels = {}, by = 1): void {
    if (by < 0) throw new Error(`counter ${this.name} cannot decrease (inc by ${by})`);
    const key = labelKey(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.#values.get(labelKey(labels)) ?? 0;
  }
  /** Sum over every label combination. */
  total(): number {
    let sum = 0;
    for (const value of this.#values.values()) sum += value;
    return sum;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [key, value] of this.#values) lines.push(series(this.name, key, value));
    return lines;
  }
}

export class Gauge implements Metric {
  readonly name: string;
  readonly help: string;
  readonly #values = new Map<string, number>();
  #collect: (() => number) | undefined;
  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }
  /** Reads the value at scrape time instead of storing it (unlabelled gauges only). */
  track(collect: () => number): void {
    this.#collect = collect;
  }
  set(value: number, labels: Labels = {}): void {
    this.#values.set(labelKey(labels), value);
  }
  get(labels: Labels = {}): number {
    if (this.#collect && Object.keys(labels).length === 0) return this.#collect();
    return this.#values.get(labelKey(labels)) ?? 0;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    if (this.#collect) lines.push(series(this.name, '', this.#collect()));
    else for (const [key, value] of this.#values) lines.push(series(this.name, key, value));
    return lines;
  }
}

export class Histogram implements Metric {
  readonly name: string;
  readonly help: string;
  readonly buckets: readonly number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;
  constructor(name: string, help: string, buckets: readonly number[]) {
    this.name = name;
    this.help = help;
    this.buckets = [...buckets].sort((a, b) => a - b);
    this.#counts = this.buckets.map(() => 0);
  }
  observe(value: number): void {
    this.#sum += value;
    this.#count += 1;
    this.buckets.forEach((bound, index) => {
      if (value <= bound) this.#counts[index] = (this.#counts[index] ?? 0) + 1;
    });
  }
  get count(): number {
    return this.#count;
  }
  get sum(): number {
    return this.#sum;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((bound, index) => {
      lines.push(series(`${this.name}_bucket`, `le="${formatNumber(bound)}"`, this.#counts[index] ?? 0));
    });
    lines.push(series(`${this.name}_bucket`, 'le="+Inf"', this.#count));
    lines.push(series(`${this.name}_sum`, '', this.#sum));
    lines.push(series(`${this.name}_count`, '', this.#count));
    return lines;
  }
}

export class Registry {
  readonly #metrics = new Map<string, Metric>();
  register<M extends Metric>(metric: M): M {
    if (this.#metrics.has(metric.name)) throw new Error(`metric ${metric.name} is registered twice`);
    this.#metrics.set(metric.name, metric);
    return metric;
  }
  render(): string {
    return `${[...this.#metrics.values()].flatMap((metric) => metric.render()).join('\n')}\n`;
  }
}

/** The bridge's series; names follow Prometheus conventions (`_total` counters, base units). */
export class BridgeMetrics {
  readonly registry = new Registry();
  readonly seen = this.registry.register(
    new Counter(
      'podwarden_bridge_events_seen_total',
      'Watch notifications received, by resource and change.',
    ),
  );
  readonly ignored = this.registry.register(
    new Counter('podwarden_bridge_events_ignored_total', 'Notifications not forwarded, by reason.'),
  );
  readonly forwarded = this.registry.register(
    new Counter('podwarden_bridge_entries_forwarded_total', 'Entries EventBridge accepted, by detail type.'),
  );
  readonly failed = this.registry.register(
    new Counter(
      'podwarden_bridge_entries_failed_total',
      'Entries given up on (logged with counts), by reason: rejected, retries-exhausted, too-large, queue-full, shutdown.',
    ),
  );
  readonly retried = this.registry.register(
    new Counter('podwarden_bridge_entries_retried_total', 'Entries sent again after a failed attempt.'),
  );
  readonly calls = this.registry.register(
    new Counter('podwarden_bridge_putevents_calls_total', 'PutEvents calls, by outcome: ok, partial, error.'),
  );
  readonly watchRestarts = this.registry.register(
    new Counter(
      'podwarden_bridge_watch_restarts_total',
      'Watch streams started again, by resource and reason: closed, error, gone (410, re-listed).',
    ),
  );
  readonly relists = this.registry.register(
    new Counter('podwarden_bridge_relists_total', 'Full lists after start or a 410 Gone, by resource.'),
  );
  readonly lag = this.registry.register(
    new Histogram(
      'podwarden_bridge_forward_lag_seconds',
      'Time from a watch notification to EventBridge accepting its entry.',
      [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    ),
  );
  readonly queueDepth = this.registry.register(
    new Gauge('podwarden_bridge_queue_depth', 'Entries waiting to be delivered (including in flight).'),
  );
  readonly oldestQueuedAge = this.registry.register(
    new Gauge('podwarden_bridge_queue_oldest_age_seconds', 'Age of the oldest entry not yet delivered.'),
  );
  readonly isLeader = this.registry.register(
    new Gauge('podwarden_bridge_is_leader', '1 while this replica holds the lease and forwards.'),
  );
  readonly leaderTransitions = this.registry.register(
    new Counter(
      'podwarden_bridge_leadership_changes_total',
      'Times this replica became or stopped being leader.',
    ),
  );
}
