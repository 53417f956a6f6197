import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const CLI = new URL('../../bin/podwarden', import.meta.url).pathname;
const FIXTURES = new URL('../fixtures/pods/', import.meta.url).pathname;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real wrapper script as a user would, with the system's older node first on PATH, so the
 * tests also prove the wrapper picks the project's Node 24.
 */
function runCli(args: string[], stdin?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(CLI, args, {
      env: { ...process.env, PATH: `/usr/local/bin:/usr/bin:/bin:${process.env.PATH ?? ''}` },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

const TIMEOUT = 60_000;

describe('podwarden', { timeout: TIMEOUT }, () => {
  it('runs on Node 24 whatever node is first on PATH', async () => {
    const result = await runCli(['--version']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^podwarden \d+\.\d+\.\d+ \(node v24\./);
  });

  it('lists its commands with --help', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^usage: podwarden <command>/);
    for (const command of ['status', 'explain', 'reap', 'dev', 'demo', 'bridge', 'manifests']) {
      expect(result.stdout).toMatch(new RegExp(`^ {2}${command} +\\S`, 'm'));
    }
  });

  it('exits 2 with the usage on stderr when no command is given', async () => {
    const result = await runCli([]);
    expect(result).toMatchObject({ code: 2, stdout: '' });
    expect(result.stderr).toMatch(/^usage: podwarden/);
  });

  it('exits 2 on an unknown command, naming it', async () => {
    const result = await runCli(['explian']);
    expect(result).toMatchObject({ code: 2, stdout: '' });
    expect(result.stderr).toBe(
      'podwarden: unknown command "explian"; commands: status, explain, reap, dev, demo, bridge, manifests (see podwarden --help)\n',
    );
  });
});

describe('podwarden explain', { timeout: TIMEOUT }, () => {
  it.each([
    ['kpo-running.json', 'running'],
    ['kpo-zombie-sidecar.json', 'zombie-sidecar'],
    ['kpo-preempted.json', 'disrupted'],
    ['kpo-pull-rate-limited.json', 'image-pull-transient'],
    ['kpo-pull-not-found.json', 'image-pull-permanent'],
    ['kpo-failed.json', 'failed'],
    ['kpo-unschedulable.json', 'pending'],
    ['unmanaged.json', 'unmanaged'],
  ])('prints exactly one JSON object for %s', async (file, kind) => {
    const result = await runCli(['explain', '--file', `${FIXTURES}${file}`, '--json']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(1);
    const printed = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(Object.keys(printed)).toEqual(['task', 'verdict']);
    expect(printed.verdict).toEqual({ kind, reason: expect.any(String) });
    if (kind === 'unmanaged') expect(printed.task).toBeNull();
    else expect(Object.keys(printed.task as object)).toEqual(['key', 'try', 'profile']);
  });

  it('prints the task and the evidence for humans', async () => {
    const result = await runCli([
      'explain',
      '-f',
      `${FIXTURES}kpo-zombie-sidecar.json`,
      '--now',
      '2026-04-09T09:30:02Z',
      '--sidecar-grace',
      '10m',
    ]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toBe(
      [
        'task:    etl_daily/extract_orders/scheduled__2026-04-09T0900000000-020f81fe0/-1 (try 1, profile airflow-kpo)',
        'verdict: zombie-sidecar',
        'why:     main container base exited 0 (Completed) 16m ago (at 2026-04-09T09:14:02Z) but the pod is still Running: sidecar airflow-xcom-sidecar still running; past the 10m sidecar grace: the reaper takes the outcome from the exit code and deletes the pod',
        '',
      ].join('\n'),
    );
  });

  it('reads the pod from stdin with --file - and honours --profile', async () => {
    const pod = await import(`${FIXTURES}generic-native-sidecar.json`, { with: { type: 'json' } });
    const result = await runCli(
      ['explain', '--file', '-', '--profile', 'generic', '--json'],
      JSON.stringify(pod.default),
    );
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(result.stdout)).toMatchObject({
      task: { key: 'nightly-report', try: 1, profile: 'generic' },
      verdict: { kind: 'zombie-sidecar' },
    });
  });

  it.each([
    [
      ['--file', '/nonexistent/pod.json'],
      'podwarden explain: cannot read pod file /nonexistent/pod.json: no such file\n',
    ],
    [['--file', FIXTURES], `podwarden explain: cannot read pod file ${FIXTURES}: it is a directory\n`],
    [
      ['--file', `${FIXTURES}kpo-running.json`, '--profile', 'airflow'],
      'podwarden explain: --profile: unknown profile "airflow": expected one of airflow-kpo, generic\n',
    ],
    [[], 'podwarden explain: missing POD or --file <pod.json> (use --file - to read stdin)\n'],
    [['pod-a', '--file', 'x'], 'podwarden explain: give a POD name or --file, not both\n'],
    [['a', 'b'], 'podwarden explain: expected one POD, got 2: a b\n'],
    [
      ['--file', 'x', '-n', 'airflow'],
      'podwarden explain: --namespace, --kubeconfig and --context read a live pod: give its POD name\n',
    ],
    [['--file', 'x', '--now', 'yesterday'], 'podwarden explain: --now "yesterday" is not an RFC 3339 time\n'],
    [
      ['--file', 'x', '--sidecar-grace', 'soon'],
      'podwarden explain: --sidecar-grace "soon" is not a duration from 1s to 30 days like 90s, 5m or 1h\n',
    ],
  ])('exits 2 for %j, naming the problem', async (args, message) => {
    const result = await runCli(['explain', ...args]);
    expect(result).toEqual({ code: 2, stdout: '', stderr: message });
  });

  it('exits 2 on an unknown option', async () => {
    const result = await runCli(['explain', '--fil', 'pod.json']);
    expect(result).toMatchObject({ code: 2, stdout: '' });
    expect(result.stderr).toMatch(
      /^podwarden explain: Unknown option '--fil'.* \(see podwarden explain --help\)\n$/,
    );
  });

  it.each([
    ['{"metadata": {', /^podwarden explain: stdin is not valid JSON: .*position 14/],
    ['', /^podwarden explain: stdin is empty: expected a Pod as JSON/],
    [
      '{"apiVersion": "v1", "kind": "List", "items": []}',
      /^podwarden explain: stdin is not a Pod: kind is "List" of 0 items/,
    ],
    ['{"spec": {"containers": []}}', /^podwarden explain: stdin is not a Pod: missing field metadata\n$/],
    [
      '{"metadata": {}, "spec": {}}',
      /^podwarden explain: stdin is not a Pod: missing field spec.containers\n$/,
    ],
    ['[1, 2]', /^podwarden explain: stdin is not a Pod: expected a Pod object, got an array\n$/],
  ])('exits 2 on bad input %j', async (input, message) => {
    const result = await runCli(['explain', '--file', '-'], input);
    expect(result).toMatchObject({ code: 2, stdout: '' });
    expect(result.stderr).toMatch(message);
  });

  it('prints its options with --help', async () => {
    const result = await runCli(['explain', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^usage: podwarden explain --file/);
    expect(result.stdout).toContain('--profile');
  });
});
