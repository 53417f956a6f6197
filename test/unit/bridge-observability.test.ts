import { afterEach, describe, expect, it } from 'vitest';
import { microTime, validateLeaseTiming } from '../../lib/bridge/leader.ts';
import { createLogger } from '../../lib/bridge/logger.ts';
import { BridgeMetrics, meanOf, seriesValue, totalOf } from '../../lib/bridge/metrics.ts';
import { type ProbeServer, startProbeServer } from '../../lib/bridge/server.ts';

describe('metrics', () => {
  it('renders counters, gauges and histograms in the Prometheus text format', async () => {
    const metrics = new BridgeMetrics();
    metrics.seen.inc({ resource: 'pods', change: 'added' }, 3);
    metrics.failed.inc({ reason: 'retries-exhausted' });
    metrics.trackQueue({ depth: () => 7, oldestAgeSeconds: () => 1.5 });
    metrics.lag.observe(0.2);
    metrics.lag.observe(3);
    const text = await metrics.render();
    expect(text).toContain('# TYPE podwarden_bridge_events_seen_total counter');
    expect(text).toContain('podwarden_bridge_events_seen_total{resource="pods",change="added"} 3');
    expect(text).toContain('podwarden_bridge_entries_failed_total{reason="retries-exhausted"} 1');
    expect(text).toContain('podwarden_bridge_queue_depth 7');
    expect(text).toContain('podwarden_bridge_queue_oldest_age_seconds 1.5');
    expect(text).toContain('podwarden_bridge_forward_lag_seconds_bucket{le="0.25"} 1');
    expect(text).toContain('podwarden_bridge_forward_lag_seconds_bucket{le="5"} 2');
    expect(text).toContain('podwarden_bridge_forward_lag_seconds_bucket{le="+Inf"} 2');
    expect(text).toContain('podwarden_bridge_forward_lag_seconds_sum 3.2');
    expect(text).toContain('podwarden_bridge_forward_lag_seconds_count 2');
    expect(text.endsWith('\n')).toBe(true);
    expect(await seriesValue(metrics.seen, { resource: 'pods', change: 'added' })).toBe(3);
    expect(await seriesValue(metrics.seen, { resource: 'pods' })).toBe(0);
    expect(await meanOf(metrics.lag)).toBeCloseTo(1.6);
  });

  it('serves the default process and event-loop metrics dashboards expect', async () => {
    const text = await new BridgeMetrics().render();
    for (const name of [
      'process_resident_memory_bytes',
      'process_cpu_seconds_total',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
    ])
      expect(text).toMatch(new RegExp(`^${name} \\d`, 'm'));
  });

  it('keeps two bridges in one process apart', async () => {
    const first = new BridgeMetrics();
    const second = new BridgeMetrics();
    first.retried.inc();
    expect(await totalOf(first.retried)).toBe(1);
    expect(await totalOf(second.retried)).toBe(0);
  });

  it('escapes label values and refuses to count down', async () => {
    const metrics = new BridgeMetrics();
    metrics.ignored.inc({ reason: 'a"b\\c\nd' });
    expect(await metrics.render()).toContain(
      'podwarden_bridge_events_ignored_total{reason="a\\"b\\\\c\\nd"} 1',
    );
    expect(() => metrics.retried.inc(-1)).toThrow('It is not possible to decrease a counter');
  });

  it('counts a value into every bucket at or above it', async () => {
    const metrics = new BridgeMetrics();
    metrics.lag.observe(1);
    const buckets = (await metrics.render())
      .split('\n')
      .filter((line) => line.startsWith('podwarden_bridge_forward_lag_seconds_bucket'));
    expect(buckets.slice(3, 6)).toEqual([
      'podwarden_bridge_forward_lag_seconds_bucket{le="0.5"} 0',
      'podwarden_bridge_forward_lag_seconds_bucket{le="1"} 1',
      'podwarden_bridge_forward_lag_seconds_bucket{le="2.5"} 1',
    ]);
    expect(buckets.at(-1)).toBe('podwarden_bridge_forward_lag_seconds_bucket{le="+Inf"} 1');
  });
});

describe('probe server', () => {
  let server: ProbeServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('serves /healthz, /readyz (503 when not ready) and /metrics on loopback', async () => {
    let ready = false;
    server = await startProbeServer({
      host: '127.0.0.1',
      port: 0,
      health: () => ({ ok: true, detail: { leader: false } }),
      ready: () => ({ ok: ready, detail: { watchesSyncing: ready ? 0 : 2 } }),
      metrics: () => 'm_total 1\n',
    });
    const base = `http://127.0.0.1:${server.port}`;
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true, leader: false });
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ ok: false, watchesSyncing: 2 });
    ready = true;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    expect(await metrics.text()).toBe('m_total 1\n');
    expect((await fetch(`${base}/other`)).status).toBe(404);
    expect((await fetch(`${base}/healthz`, { method: 'POST' })).status).toBe(405);
  });

  it('answers 503 with the reason when a probe throws', async () => {
    server = await startProbeServer({
      host: '127.0.0.1',
      port: 0,
      health: () => {
        throw new Error('broken');
      },
      ready: () => ({ ok: true, detail: {} }),
      metrics: () => '',
    });
    const response = await fetch(`http://127.0.0.1:${server.port}/healthz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ ok: false, error: 'broken' });
  });
});

describe('logger', () => {
  it('writes one JSON object per line with the fields of every Podwarden log line, errors included', () => {
    const lines: string[] = [];
    const log = createLogger({
      sink: { write: (line) => lines.push(line) },
      level: 'info',
      fields: { cluster: 'c' },
    });
    log.debug('hidden');
    log
      .createChild({ persistentKeys: { part: 'forwarder' } })
      .error('failed', { error: Object.assign(new Error('boom'), { statusCode: 410 }), count: 2 });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('\n')).toBe(true);
    const record = JSON.parse(lines[0]!);
    expect(record).toEqual({
      level: 'ERROR',
      message: 'failed',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      service: 'podwarden-bridge',
      sampling_rate: 0,
      cluster: 'c',
      part: 'forwarder',
      error: expect.objectContaining({ name: 'Error', message: 'boom', statusCode: 410 }),
      count: 2,
    });
  });

  it("has the same base fields as the functions' logger", async () => {
    const { logger } = await import('../../functions/shared/observability.ts');
    const lines: string[] = [];
    const bridgeLog = createLogger({ sink: { write: (line) => lines.push(line) } });
    bridgeLog.info('x');
    const original = process.stdout.write.bind(process.stdout);
    const captured: string[] = [];
    // The functions' logger prints on process.stdout, as in Lambda.
    process.stdout.write = ((chunk: string) =>
      captured.push(String(chunk)) > 0) as typeof process.stdout.write;
    try {
      logger.info('x');
    } finally {
      process.stdout.write = original;
    }
    const keys = (line: string) => Object.keys(JSON.parse(line)).sort();
    expect(keys(lines[0]!)).toEqual(keys(captured.find((line) => line.includes('"message":"x"'))!));
  });
});

describe('lease timing', () => {
  it('writes Lease times with the six fractional digits of a MicroTime', () => {
    expect(microTime(Date.parse('2026-01-02T03:04:05.678Z'))).toBe('2026-01-02T03:04:05.678000Z');
  });

  it('refuses timings where a leader could outlive its lease', () => {
    expect(
      validateLeaseTiming({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }),
    ).toEqual([]);
    expect(
      validateLeaseTiming({ leaseDurationMs: 5_000, renewDeadlineMs: 5_000, retryPeriodMs: 6_000 }),
    ).toEqual([
      'the renew deadline must be shorter than the lease duration',
      'the retry period must be positive and shorter than the renew deadline',
    ]);
  });
});
