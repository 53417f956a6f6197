import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isRetryableEntryError, type Plannable, planBatch, retryDelayMs } from '../../lib/bridge/batching.ts';

const item = (key: string, size = 100, extra: Partial<Plannable> = {}): Plannable => ({
  key,
  size,
  inFlight: false,
  notBefore: 0,
  ...extra,
});

describe('planBatch', () => {
  it('takes at most 10 entries, oldest first', () => {
    const queue = Array.from({ length: 25 }, (_, index) => item(`pod-${index}`));
    expect(planBatch(queue, 0)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('stays within the request size, skipping what does not fit for smaller entries of other pods', () => {
    const queue = [item('a', 150_000), item('b', 150_000), item('c', 50_000), item('d', 70_000)];
    expect(planBatch(queue, 0)).toEqual([0, 2]);
  });

  it('takes only the oldest waiting entry of a pod per call', () => {
    const queue = [item('a'), item('a'), item('b'), item('a'), item('c')];
    expect(planBatch(queue, 0)).toEqual([0, 2, 4]);
  });

  it('holds back every entry of a pod while an earlier one is in flight or backing off', () => {
    const queue = [
      item('a', 100, { inFlight: true }),
      item('a'),
      item('b', 100, { notBefore: 500 }),
      item('b'),
      item('c'),
    ];
    expect(planBatch(queue, 100)).toEqual([4]);
    expect(planBatch(queue, 500)).toEqual([2, 4]);
  });

  it('holds back a pod whose oldest entry does not fit in this call', () => {
    const queue = [item('a', 200_000), item('b', 100_000), item('b', 10)];
    expect(planBatch(queue, 0)).toEqual([0]);
  });

  it('keeps per-pod order and loses nothing, whatever fails and in whatever order calls complete (property)', () => {
    const scenario = fc.record({
      keys: fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), { minLength: 1, maxLength: 120 }),
      sizes: fc.array(fc.integer({ min: 1, max: 120_000 }), { minLength: 120, maxLength: 120 }),
      choices: fc.array(fc.nat({ max: 1_000 }), { minLength: 50, maxLength: 300 }),
    });
    fc.assert(
      fc.property(scenario, ({ keys, sizes, choices }) => {
        type Entry = Plannable & { seq: number };
        let queue: Entry[] = keys.map((key, seq) => ({ ...item(key, sizes[seq]!), seq }));
        const inFlight: Entry[][] = [];
        const delivered: Entry[] = [];
        let now = 0;
        let step = 0;
        const choose = (n: number) => choices[step++ % choices.length]! % n;
        while (queue.length > 0) {
          now += 1;
          const startCall = inFlight.length === 0 || (inFlight.length < 4 && choose(2) === 0);
          const batch = startCall ? planBatch(queue, now).map((index) => queue[index]!) : [];
          if (batch.length > 0) {
            expect(batch.length).toBeLessThanOrEqual(10);
            expect(batch.reduce((sum, entry) => sum + entry.size, 0)).toBeLessThanOrEqual(256 * 1024);
            for (const entry of batch) entry.inFlight = true;
            inFlight.push(batch);
            continue;
          }
          if (inFlight.length === 0) continue; // everything is backing off: let time pass
          const [call] = inFlight.splice(choose(inFlight.length), 1);
          for (const entry of call!) {
            entry.inFlight = false;
            if (choose(3) === 0) entry.notBefore = now + choose(5);
            else delivered.push(entry);
          }
          const done = new Set(delivered);
          queue = queue.filter((entry) => !done.has(entry));
        }
        expect(delivered).toHaveLength(keys.length);
        for (const key of new Set(keys)) {
          const order = delivered.filter((entry) => entry.key === key).map((entry) => entry.seq);
          expect(order).toEqual([...order].sort((x, y) => x - y));
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('retries', () => {
  it('backs off exponentially with jitter between half and all of the ceiling, capped', () => {
    const policy = { baseMs: 100, maxMs: 1_000 };
    expect([1, 2, 3, 4, 5, 9].map((attempt) => retryDelayMs(attempt, policy, () => 1))).toEqual([
      100, 200, 400, 800, 1_000, 1_000,
    ]);
    expect(retryDelayMs(3, policy, () => 0)).toBe(200);
  });

  it('retries throttling and internal failures, never malformed or unauthorised entries', () => {
    expect(isRetryableEntryError('ThrottlingException')).toBe(true);
    expect(isRetryableEntryError('InternalFailure')).toBe(true);
    expect(isRetryableEntryError('MalformedDetail')).toBe(false);
    expect(isRetryableEntryError('NotAuthorizedForSourceException')).toBe(false);
  });
});
