/**
 * ElasticMQ, an SQS-compatible server, started in memory on a free 127.0.0.1 port for the tests
 * and the bench: the real engine behind the check queue's SQS calls (per-message DelaySeconds,
 * visibility timeouts, redrive to a dead-letter queue). Its jars come from Maven Central through
 * scripts/elasticmq/fetch.sh into ~/.cache/podwarden/elasticmq/<version>/ (once per machine).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { freeLoopbackPorts } from './ports.ts';

/** Must match `version` in scripts/elasticmq/fetch.sh. */
export const ELASTICMQ_VERSION = '1.7.1';
/** ElasticMQ's queue URLs carry this account id; the region is the one the clients use. */
export const ELASTICMQ_ACCOUNT = '000000000000';
export const ELASTICMQ_REGION = 'local';

const HERE = dirname(fileURLToPath(import.meta.url));
const FETCH_SCRIPT = join(HERE, '..', '..', 'scripts', 'elasticmq', 'fetch.sh');
const LAUNCHER = join(HERE, 'ElasticMQLoopback.java');
const STARTUP_DEADLINE_MS = 120_000;
const SHUTDOWN_DEADLINE_MS = 20_000;

export interface ElasticMq {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  stop(): Promise<void>;
}

/** The directory of ElasticMQ's jars, fetched first if the cache lacks them. */
export async function elasticMqJars(): Promise<string> {
  const { stdout } = await promisify(execFile)('bash', [FETCH_SCRIPT], { maxBuffer: 1 << 20 });
  const dir = stdout.trim().split('\n').at(-1);
  if (!dir) throw new Error(`${FETCH_SCRIPT} printed no jar directory`);
  return dir;
}

export async function startElasticMq(): Promise<ElasticMq> {
  const jars = await elasticMqJars();
  const [port] = await freeLoopbackPorts(1);
  const workDir = await mkdtemp(join(tmpdir(), 'podwarden-elasticmq-'));
  const config = join(workDir, 'elasticmq.conf');
  await writeFile(
    config,
    [
      'include classpath("application.conf")',
      `node-address { protocol = http, host = 127.0.0.1, port = ${port}, context-path = "" }`,
      `rest-sqs { enabled = true, bind-port = ${port}, bind-hostname = "127.0.0.1", sqs-limits = strict }`,
      'rest-stats { enabled = false }',
      `aws { region = ${ELASTICMQ_REGION}, accountId = "${ELASTICMQ_ACCOUNT}" }`,
      '',
    ].join('\n'),
  );
  const java = spawn('java', ['-Xmx256m', `-Dconfig.file=${config}`, '-cp', join(jars, '*'), LAUNCHER], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  java.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    output = (output + chunk).slice(-8000);
  });
  java.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    output = (output + chunk).slice(-8000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const stopAll = async () => {
    await stop(java);
    await rm(workDir, { recursive: true, force: true });
  };
  try {
    await waitForReady(endpoint, java, () => output);
    return { endpoint, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

async function waitForReady(endpoint: string, java: ChildProcess, output: () => string): Promise<void> {
  const client = new SQSClient({
    endpoint,
    region: ELASTICMQ_REGION,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  let exited: string | undefined;
  java.once('exit', (code, signal) => {
    exited = signal ?? `code ${code}`;
  });
  java.once('error', (error) => {
    exited = `a start failure (is Java 17 installed?): ${error.message}`;
  });
  const deadline = Date.now() + STARTUP_DEADLINE_MS;
  try {
    for (;;) {
      if (exited) throw new Error(`ElasticMQ exited early with ${exited}\n${output()}`);
      try {
        await client.send(new ListQueuesCommand({}));
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new Error(
            `ElasticMQ at ${endpoint} did not answer within ${STARTUP_DEADLINE_MS} ms\n${output()}`,
            {
              cause: error,
            },
          );
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
