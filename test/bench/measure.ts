/**
 * Throughput measurement for benches: warm up, then time several runs of at least `minMs` each and
 * report the median, which shrugs off a run disturbed by GC or by other work on the machine.
 */
import { performance } from 'node:perf_hooks';

export interface MeasureOptions {
  /** Timed runs; the median is reported. */
  runs?: number;
  /** Minimum duration of each run, ms. */
  minMs?: number;
  /** Untimed warm-up before the first run (lets the JIT settle), ms; defaults to `minMs`. */
  warmupMs?: number;
}

export interface Measurement {
  /** Median operations per second over the runs. */
  opsPerSecond: number;
  /** Every run's operations per second, in run order. */
  runs: number[];
}

/** Keeps results observable so the JIT cannot drop a call whose result is unused. */
export let sink: unknown;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === 'function';
}

/** Runs `fn` in batches of `batch` until `minMs` passed; returns [operations, elapsed ms]. */
async function timedLoop(
  fn: () => unknown,
  batch: number,
  minMs: number,
  isAsync: boolean,
): Promise<[number, number]> {
  let operations = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    if (isAsync) {
      for (let i = 0; i < batch; i++) sink = await fn();
    } else {
      for (let i = 0; i < batch; i++) sink = fn();
    }
    operations += batch;
    elapsed = performance.now() - start;
  } while (elapsed < minMs);
  return [operations, elapsed];
}

/**
 * Measures `fn` (sync, or returning a promise that is awaited) in full detail.
 * Batches are sized during the warm-up so the clock is read about once a millisecond.
 */
export async function measure(fn: () => unknown, options: MeasureOptions = {}): Promise<Measurement> {
  const runs = options.runs ?? 7;
  const minMs = options.minMs ?? 200;
  const warmupMs = options.warmupMs ?? minMs;
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a whole number >= 1, got ${runs}`);
  if (!(minMs > 0)) throw new Error(`minMs must be > 0, got ${minMs}`);

  const first = fn();
  const isAsync = isThenable(first);
  sink = isAsync ? await first : first;

  const [warmOps, warmMs] = await timedLoop(fn, 1, warmupMs, isAsync);
  const batch = Math.max(1, Math.floor(warmOps / Math.max(warmMs, 1)));

  const results: number[] = [];
  for (let run = 0; run < runs; run++) {
    const [operations, elapsed] = await timedLoop(fn, batch, minMs, isAsync);
    results.push((operations * 1000) / elapsed);
  }
  const sorted = [...results].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { opsPerSecond: median, runs: results };
}

/** Median operations per second of `fn` over `runs` runs of at least `minMs` each, after a warm-up. */
export async function measureOpsPerSecond(fn: () => unknown, options: MeasureOptions = {}): Promise<number> {
  return (await measure(fn, options)).opsPerSecond;
}

/** `12.3 k ops/s`, `1.45 M ops/s`: three significant digits. */
export function formatOps(opsPerSecond: number): string {
  const [scale, unit] =
    opsPerSecond >= 1e6 ? [1e6, ' M'] : opsPerSecond >= 1e3 ? [1e3, ' k'] : ([1, ''] as [number, string]);
  return `${(opsPerSecond / scale).toPrecision(3)}${unit} ops/s`;
}
