import { afterEach, describe, expect, it } from 'vitest';
import { microTime, validateLeaseTiming } from '../../lib/bridge/leader.ts';
import { createLogger } from '../../lib/bridge/logger.ts';
import { BridgeMetrics, Counter, Histogram } from '../../lib/bridge/metrics.ts';
import { type ProbeServer, startProbeServer } from '../../lib/bridge/server.ts';

describe('metrics', () => {
  it('renders counters, gauges and histograms in the Prometheus text format', () => {
    const metrics = new BridgeMetrics();
    metrics.seen.inc({ resource: 'pods', change: 'added' }, 3);
    metrics.failed.inc({ reason: 'retries-exhausted' });
    metrics.queueDepth.track(() => 7);
    metrics.lag.observe(0.2);
    metrics.lag.observe(3);
    const text = metrics.registry.render();
    expect(text).toContain('# TYPE podwarden_bridge_events_seen_total counter');
    expect(text).toContain('podwarden_bridge_events_seen_total{change="added",resource="pods"} 3');
    expect(text).toContain('podwarden_bridge_entries_failed_total{reason="retries-exhausted"} 1');
    expect(text).toContain('podwarden_bridge_queue_depth 7');
    expect(text).toContain('podwarden_bridge_forward_lag_seconds_bucket{le="0.25"} 1');
    expect(text).toContain('podwarden_bridge_forward_lag_seconds_bucket{le="5"} 2');
    expect(text).toContain('podwarden_bridge_forward_lag_seconds_bucket{le="+Inf"} 2');
    expect(text).toContain('podwarden_bridge_forward_lag_seconds_sum 3.2');
    expect(text).toContain('podwarden_bridge_forward_lag_seconds_count 2');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('escapes label values and refuses to count down', () => {
    const counter = new Counter('x_total', 'help');
    counter.inc({ path: 'a"b\\c\nd' });
    expect(counter.render()).toContain('x_total{path="a\\"b\\\\c\\nd"} 1');
    expect(() => counter.inc({}, -1)).toThrow('counter x_total cannot decrease');
  });

  it('counts a value into every bucket at or above it', () => {
    const histogram = new Histogram('h', 'help', [1, 2]);
    histogram.observe(1);
    expect(histogram.render()).toEqual([
      '# HELP h help',
      '# TYPE h histogram',
      'h_bucket{le="1"} 1',
      'h_bucket{le="2"} 1',
      'h_bucket{le="+Inf"} 1',
      'h_sum 1',
      'h_count 1',
    ]);
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
  it('writes one JSON object per line with time, level, message and fields, errors included', () => {
    const lines: string[] = [];
    const log = createLogger({
      sink: { write: (line) => lines.push(line) },
      level: 'info',
      fields: { cluster: 'c' },
      now: () => 0,
    });
    log.debug('hidden');
    log
      .child({ part: 'forwarder' })
      .error('failed', { error: Object.assign(new Error('boom'), { statusCode: 410 }), count: 2 });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('\n')).toBe(true);
    expect(JSON.parse(lines[0]!)).toEqual({
      time: '1970-01-01T00:00:00.000Z',
      level: 'error',
      msg: 'failed',
      cluster: 'c',
      part: 'forwarder',
      error: { name: 'Error', message: 'boom', statusCode: 410 },
      count: 2,
    });
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
