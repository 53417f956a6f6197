// The CLI bundle the image ships (scripts/image/build.ts), run as the image's entrypoint runs it but
// on this machine: it answers --version and `bridge --help`, and `bridge` starts, serves /readyz and
// /metrics, and exits 0 on SIGTERM. A dependency that breaks under esbuild (an optional require, a
// file read at run time) fails here in seconds; the image's full run is test/cluster/image.test.ts.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import packageJson from '../../package.json' with { type: 'json' };
import { cliFiles } from '../../scripts/image/build.ts';
import { followBridgeLog } from '../support/bridge-log.ts';

let home: string;
let cli: string;
// Accepts and hangs up every connection: a loopback API server and bus that are never reachable.
let refuser: Server;
let refuserPort: number;
const children: ChildProcess[] = [];

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'podwarden-bundle-test-'));
  for (const file of (await cliFiles()).files) {
    mkdirSync(dirname(join(home, file.path)), { recursive: true });
    writeFileSync(join(home, file.path), file.content);
  }
  cli = join(home, 'bin/podwarden.mjs');
  refuser = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => refuser.listen(0, '127.0.0.1', resolve));
  refuserPort = (refuser.address() as { port: number }).port;
}, 60_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await new Promise((resolve) => refuser?.close(resolve));
  if (home) rmSync(home, { recursive: true, force: true });
});

// Only what the image's Env gives the process, so nothing of this machine's leaks in.
const imageEnv = () => ({ PATH: '/usr/local/bin:/usr/bin:/bin', HOME: home });

describe('the bundled CLI', () => {
  it('answers --version with the package version and bridge --help with its options', () => {
    const version = spawnSync(process.execPath, ['--use-system-ca', cli, '--version'], {
      encoding: 'utf8',
      env: imageEnv(),
    });
    expect(version.stderr).toBe('');
    expect(version.stdout).toBe(`podwarden ${packageJson.version} (node ${process.version})\n`);
    const help = spawnSync(process.execPath, ['--use-system-ca', cli, 'bridge', '--help'], {
      encoding: 'utf8',
      env: imageEnv(),
    });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: podwarden bridge \[options\]/);
    expect(help.stdout).toContain('--metrics-port');
  });

  it('runs the bridge: logs that it started, /readyz and /metrics answer, SIGTERM ends it with 0', async () => {
    const kubeconfig = join(home, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: `https://127.0.0.1:${refuserPort}` } }],
        users: [{ name: 'u', user: { token: 'unused' } }],
        contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'c',
      }),
    );
    const child = spawn(
      process.execPath,
      [
        '--use-system-ca',
        cli,
        'bridge',
        ...['--cluster', 'bundle-test', '--bus', 'podwarden-test', '--region', 'eu-west-1'],
        ...['--kubeconfig', kubeconfig, '--identity', 'bundle-test', '--lease-namespace', 'default'],
        ...['--metrics-host', '127.0.0.1', '--metrics-port', '0'],
        ...['--eventbridge-endpoint', `http://127.0.0.1:${refuserPort}`],
      ],
      {
        env: { ...imageEnv(), AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.push(child);
    const log = followBridgeLog(child);
    const started = await log.waitFor('bridge started', 20_000);
    expect(started).toMatchObject({ level: 'INFO', service: 'podwarden-bridge', cluster: 'bundle-test' });
    const port = started.port as number;
    // No API server answers, so it is a standby: live, ready, and saying it does not lead.
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toContain('podwarden_bridge_is_leader 0');
    // prom-client's default metrics, which it collects through optional parts of Node.
    expect(metrics).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(metrics).toContain('nodejs_eventloop_lag_seconds');

    child.kill('SIGTERM');
    expect(await log.exited).toBe(0);
    expect(log.stderr.join('')).toBe('');
    expect(log.find('bridge stopped')).toMatchObject({ failed: 0, undeliveredAtShutdown: 0 });
  }, 30_000);
});
