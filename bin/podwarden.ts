/**
 * The `podwarden` CLI. Run it through `bin/podwarden` (which picks the project's Node 24), or
 * `npm run podwarden -- <command>`. Each command lives in `bin/commands/<name>.ts` and is registered
 * in COMMANDS below; it is imported only when invoked, so one command's dependencies never slow or
 * break another.
 */
import { type CommandIO, EXIT, type RunCommand, writeLine } from './command.ts';

interface CommandEntry {
  summary: string;
  load: () => Promise<{ run: RunCommand }>;
}

export const COMMANDS: Readonly<Record<string, CommandEntry>> = {
  status: {
    summary: "what Podwarden is doing with the tasks: the table's records, one task's trail and audit",
    load: () => import('./commands/status.ts'),
  },
  explain: {
    summary: 'say which task a pod belongs to and what Podwarden makes of it (a live pod or a pod JSON)',
    load: () => import('./commands/explain.ts'),
  },
  reap: {
    summary: "run the reaper's rules against a cluster: what it would delete and what it spares (--dry-run)",
    load: () => import('./commands/reap.ts'),
  },
  dev: {
    summary: 'run Podwarden on this machine against the current kube context, DynamoDB Local as its store',
    load: () => import('./commands/dev.ts'),
  },
  demo: {
    summary: 'show the three failures fixed on a local control plane with DynamoDB Local',
    load: () => import('./commands/demo.ts'),
  },
  bridge: {
    summary: "forward a cluster's managed pods and their events to EventBridge (runs in the cluster)",
    load: () => import('./commands/bridge.ts'),
  },
  manifests: {
    summary: 'print the Kubernetes objects that run the bridge (kubectl apply -f -)',
    load: () => import('./commands/manifests.ts'),
  },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(([name, entry]) => `  ${name.padEnd(width)}  ${entry.summary}`);
  return [
    'usage: podwarden <command> [options]',
    '',
    'commands:',
    ...lines,
    '',
    'Run `podwarden <command> --help` for the options of a command; `podwarden --version` for the version.',
  ].join('\n');
}

async function packageVersion(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(new URL('../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version?: string }).version ?? 'unknown';
}

export async function main(argv: string[], io: CommandIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    writeLine(io.stderr, usage());
    return EXIT.usage;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    writeLine(io.stdout, usage());
    return EXIT.ok;
  }
  if (name === '--version') {
    writeLine(io.stdout, `podwarden ${await packageVersion()} (node ${process.version})`);
    return EXIT.ok;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    writeLine(
      io.stderr,
      `podwarden: unknown command ${JSON.stringify(name)}; commands: ${Object.keys(COMMANDS).join(', ')} (see podwarden --help)`,
    );
    return EXIT.usage;
  }
  const command = await entry.load();
  return command.run(rest, io);
}

if (import.meta.main) {
  const io: CommandIO = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
  try {
    process.exitCode = await main(process.argv.slice(2), io);
  } catch (error) {
    // A bug, not bad input (commands report that themselves): show the stack for the report.
    writeLine(
      io.stderr,
      `podwarden: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    process.exitCode = EXIT.failure;
  }
}
