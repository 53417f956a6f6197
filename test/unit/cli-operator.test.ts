/**
 * The operator's commands without a cluster or a table: argument handling, exit codes, kubeconfig
 * resolution (as kubectl does it) and the output helpers. The commands run in-process on string
 * streams; what they do against a real cluster and DynamoDB Local is in test/cluster/cli.test.ts.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatTable, loadKubeConfig, namespaceOf, parseNamespaces } from '../../bin/cli-support.ts';
import { UsageError } from '../../bin/command.ts';
import { main } from '../../bin/podwarden.ts';
import { VersionConflictError } from '../../lib/core/ports.ts';
import { MemoryTaskStore, TappedTaskStore } from '../../lib/local/memory-store.ts';
import { makeTaskRecord } from '../support/task-fixtures.ts';

async function runInProcess(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  stderr.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const code = await main(argv, { stdin: new PassThrough(), stdout, stderr });
  return { code, stdout: out, stderr: err };
}

function kubeconfigFile(
  dir: string,
  name: string,
  contexts: Array<{ name: string; namespace?: string }>,
  current?: string,
) {
  const file = join(dir, name);
  const clusters = contexts.map(
    (c) => `- name: ${c.name}-cluster\n  cluster:\n    server: https://127.0.0.1:6443`,
  );
  const users = contexts.map((c) => `- name: ${c.name}-user\n  user:\n    token: abc`);
  const ctx = contexts.map(
    (c) =>
      `- name: ${c.name}\n  context:\n    cluster: ${c.name}-cluster\n    user: ${c.name}-user${c.namespace ? `\n    namespace: ${c.namespace}` : ''}`,
  );
  writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters:\n${clusters.join('\n')}`,
      `users:\n${users.join('\n')}`,
      `contexts:\n${ctx.join('\n')}`,
      ...(current ? [`current-context: ${current}`] : []),
    ].join('\n'),
  );
  return file;
}

describe('kubeconfig and context, as kubectl resolves them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'podwarden-kubeconfig-'));
  const first = kubeconfigFile(dir, 'first', [{ name: 'prod', namespace: 'airflow' }], 'prod');
  const second = kubeconfigFile(dir, 'second', [{ name: 'staging' }, { name: 'prod' }], 'staging');

  it('merges every KUBECONFIG file, the first current context winning', () => {
    const kc = loadKubeConfig({}, { KUBECONFIG: [first, second].join(delimiter) });
    expect(kc.getCurrentContext()).toBe('prod');
    expect(kc.getContexts().map((c) => c.name)).toEqual(['prod', 'staging']);
    expect(namespaceOf(kc, undefined)).toBe('airflow');
    expect(namespaceOf(kc, 'etl')).toBe('etl');
  });

  it('takes --context, and --kubeconfig before KUBECONFIG', () => {
    const kc = loadKubeConfig({ kubeconfig: second, context: 'prod' }, { KUBECONFIG: first });
    expect(kc.getCurrentContext()).toBe('prod');
    expect(kc.getCurrentCluster()?.name).toBe('prod-cluster');
    expect(namespaceOf(kc, undefined)).toBe('default');
  });

  it('names the problem: a missing file, an unknown context', () => {
    expect(() => loadKubeConfig({ kubeconfig: join(dir, 'nope') }, {})).toThrow(
      new UsageError(`--kubeconfig: no kubeconfig at ${join(dir, 'nope')} (give --kubeconfig <file>)`),
    );
    expect(() => loadKubeConfig({ context: 'dev' }, { KUBECONFIG: second })).toThrow(
      new UsageError('--context "dev" is not in the kubeconfig (contexts: staging, prod)'),
    );
    expect(() => loadKubeConfig({}, { HOME: dir })).toThrow(
      /^the default kubeconfig: no kubeconfig at .*\.kube\/config/,
    );
  });

  it('reads namespace lists, * and empty meaning every namespace', () => {
    expect(parseNamespaces('--namespaces', 'a, b')).toEqual(['a', 'b']);
    expect(parseNamespaces('--namespaces', '*')).toEqual([]);
    expect(() => parseNamespaces('--namespaces', 'a,B_C')).toThrow(
      '--namespaces "B_C" is not a namespace name',
    );
  });
});

describe('exit codes and messages', () => {
  it.each([
    [['status'], 'podwarden status: no table: give --table <name> or set PODWARDEN_TABLE_NAME\n'],
    [['status', 'a', 'b', '--table', 'tasks'], 'podwarden status: expected at most one TASK, got 2: a b\n'],
    [
      ['status', '--limit', '0', '--table', 'tasks'],
      'podwarden status: --limit "0" is not a whole number from 1 to 10000\n',
    ],
    [
      ['status', '--table', 'x'],
      'podwarden status: --table: tableName must be 3-255 characters of A-Z a-z 0-9 _ . -, got "x"\n',
    ],
    [
      ['status', '-n', 'Not_A_Namespace', '--table', 'tasks'],
      'podwarden status: --namespace "Not_A_Namespace" is not a namespace name\n',
    ],
    [
      ['reap'],
      'podwarden reap: refusing to delete pods without --yes; run with --dry-run first to see what would go\n',
    ],
    [['reap', '--dry-run', '--yes'], 'podwarden reap: --dry-run and --yes contradict each other; give one\n'],
    [
      ['reap', '--dry-run', '--max-deletes', 'many'],
      'podwarden reap: --max-deletes "many" is not a whole number from 1 to 1000\n',
    ],
    [
      ['reap', '--dry-run', '--min-age', 'old'],
      'podwarden reap: --min-age "old" is not a duration like 90s, 15m or 2h\n',
    ],
    [
      ['reap', '--dry-run', '--profiles', 'kpo'],
      'podwarden reap: --profiles: unknown profile "kpo": expected one of airflow-kpo, generic\n',
    ],
    [
      ['dev', '--in-memory', '--data-dir', '/tmp/x'],
      'podwarden dev: --in-memory and --data-dir contradict each other; give one\n',
    ],
    [['dev', '--cluster', 'no spaces'], 'podwarden dev: --cluster "no spaces" is not a valid cluster name\n'],
    [['dev', 'now'], 'podwarden dev: unexpected argument "now"\n'],
  ])('%j exits 2, naming the problem', async (argv, message) => {
    expect(await runInProcess(argv)).toEqual({ code: 2, stdout: '', stderr: message });
  });

  it('points to --help on an unknown option', async () => {
    const result = await runInProcess(['reap', '--dryrun']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /^podwarden reap: Unknown option '--dryrun'.*\(see podwarden reap --help\)\n$/,
    );
  });

  it.each(['status', 'reap', 'dev', 'explain'])('%s --help prints its usage and exits 0', async (command) => {
    const result = await runInProcess([command, '--help']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(new RegExp(`^usage: podwarden ${command} `));
    expect(result.stdout).toMatch(/Exit codes: 0 .*1 .*2 /s);
  });

  it('exits 1, not 2, when the table cannot be reached', async () => {
    const result = await runInProcess([
      'status',
      '--table',
      'tasks',
      // A closed port on loopback: the command fails to read, which is no fault of the arguments.
      '--dynamodb-endpoint',
      'http://127.0.0.1:1',
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^podwarden status: /);
  }, 30_000);
});

describe('output helpers', () => {
  it('pads columns as kubectl does, without trailing blanks', () => {
    expect(
      formatTable(
        ['NAME', 'STATE', 'WHY'],
        [
          ['a', 'Running', ''],
          ['long-name', 'Failed', 'exit 1'],
        ],
      ),
    ).toBe(['NAME        STATE     WHY', 'a           Running', 'long-name   Failed    exit 1'].join('\n'));
  });
});

describe('local stores', () => {
  it('the in-memory store keeps the optimistic-locking contract', async () => {
    const store = new MemoryTaskStore();
    const task = makeTaskRecord({ version: 0 });
    const saved = await store.put(task, 1);
    expect(saved.version).toBe(1);
    await expect(store.put(task, 2)).rejects.toBeInstanceOf(VersionConflictError);
    expect(await store.findByPod(task.id.cluster, task.id.namespace, task.podName)).toMatchObject({
      version: 1,
    });
  });

  it('a read-only tap never writes through, and keeps the audit lines for the report', async () => {
    const backing = new MemoryTaskStore();
    const tap = new TappedTaskStore(backing, { readOnly: true });
    const task = makeTaskRecord({ version: 0 });
    await expect(tap.put(task, 1)).rejects.toThrow(/read-only/);
    await tap.appendAudit(task.id, [
      { at: 1, what: 'reap:stale-try', podName: 'p', actor: 't', evidence: [] },
    ]);
    expect(await backing.listAudit(task.id)).toEqual([]);
    expect(tap.audits).toHaveLength(1);
  });
});
