/**
 * The Airflow tier: podwarden-airflow's own pytest suite (integrations/airflow/tests), run with the
 * real apache-airflow and cncf-kubernetes provider from the cached virtualenv that
 * scripts/airflow/venv.sh builds. The unit tests need only Airflow; the scenario tests run real
 * KubernetesPodOperator tasks (`dag.test()`, `retries=0`) on the ground test/airflow/ground.ts
 * starts (its own control plane, DynamoDB Local and Podwarden's local loop).
 *
 * pytest runs once, before the tests below; each pytest test is one test here, so `npm test`
 * counts and reports them with the rest. The whole pytest output is in the log file named on
 * failure. The project runs after the other tiers (`groupOrder`), so the scenarios' timings do
 * not share the two cores with them.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const packageDir = join(root, 'integrations/airflow');
const PYTEST_TIMEOUT_MS = 45 * 60_000;

interface PytestOutcome {
  id: string;
  outcome: 'passed' | 'failed' | 'skipped' | `error in ${string}`;
  text: string;
  seconds: number;
}

const SEVERITY: Record<string, number> = { passed: 0, skipped: 1, failed: 3 };
const severity = (outcome: string): number => SEVERITY[outcome] ?? 2;

function venvPython(): string {
  // Builds the venv on a new machine (minutes), reuses it otherwise; its last stdout line is its path.
  const out = execFileSync('bash', [join(root, 'scripts/airflow/venv.sh')], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const venv = out.trim().split('\n').at(-1) ?? '';
  return join(venv, 'bin/python');
}

const python = venvPython();
const collected = execFileSync(python, ['-m', 'pytest', '--collect-only', '-q', '-p', 'no:cacheprovider'], {
  cwd: packageDir,
  encoding: 'utf8',
})
  .split('\n')
  .filter((line) => line.includes('::'));

const workdir = mkdtempSync(join(tmpdir(), 'podwarden-pytest-'));
const reportPath = join(workdir, 'report.jsonl');
const logPath = join(workdir, 'pytest.log');
const outcomes = new Map<string, PytestOutcome>();
let exitCode: number | null = null;

beforeAll(async () => {
  const log = openSync(logPath, 'w');
  exitCode = await new Promise<number | null>((done, fail) => {
    const child = spawn(python, ['-m', 'pytest', '-p', 'no:cacheprovider', '-rA'], {
      cwd: packageDir,
      env: { ...process.env, PODWARDEN_PYTEST_REPORT: reportPath },
      stdio: ['ignore', log, log],
    });
    child.on('error', fail);
    child.on('exit', (code) => done(code));
  });
  let lines: string[] = [];
  try {
    lines = readFileSync(reportPath, 'utf8').split('\n').filter(Boolean);
  } catch {
    // No report at all: every test below fails with the log's path.
  }
  for (const line of lines) {
    const outcome = JSON.parse(line) as PytestOutcome;
    const before = outcomes.get(outcome.id);
    if (!before || severity(outcome.outcome) > severity(before.outcome)) outcomes.set(outcome.id, outcome);
  }
  const tail = readFileSync(logPath, 'utf8').trimEnd().split('\n').at(-1);
  console.log(`podwarden-airflow pytest: ${tail} (exit ${exitCode}; log ${logPath})`);
}, PYTEST_TIMEOUT_MS);

describe('podwarden-airflow (pytest, real Airflow and provider)', () => {
  test('pytest collected the package tests and exited as its outcomes say', () => {
    expect(collected.length, 'pytest collected no test (its exit 5)').toBeGreaterThan(0);
    const failed = [...outcomes.values()].some((o) => severity(o.outcome) >= 2);
    // 0: all passed; 1: some failed. Anything else (interrupted, internal or usage error) is a
    // failure of the run itself, whatever the per-test lines say.
    expect([0, 1], `pytest exited ${exitCode}; see ${logPath}`).toContain(exitCode);
    expect(exitCode === 1, `pytest exit ${exitCode} vs. per-test outcomes; see ${logPath}`).toBe(failed);
  });

  test.for(collected)('%s', (id, context) => {
    const outcome = outcomes.get(id);
    expect(outcome, `pytest reported nothing for ${id}; see ${logPath}`).toBeDefined();
    if (outcome?.outcome === 'skipped') context.skip(outcome.text);
    expect(outcome?.outcome, `${outcome?.text}\n(whole output: ${logPath})`).toBe('passed');
  });
});
