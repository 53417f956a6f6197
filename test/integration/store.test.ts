import { randomBytes } from 'node:crypto';
import {
  type DynamoDBClient,
  GetItemCommand,
  ProvisionedThroughputExceededException,
  type PutItemCommandInput,
  QueryCommand,
  type QueryCommandOutput,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuditEntry, RecordTooLargeError, VersionConflictError } from '../../lib/core/ports.ts';
import type { TaskId, TaskRecord } from '../../lib/core/task.ts';
import { DynamoTaskStore } from '../../lib/store/dynamo-task-store.ts';
import {
  DUE_INDEX_NAME,
  podPartitionKey,
  SEEN_SORT_KEY,
  StoreInputError,
  seenPartitionKey,
  TASK_SORT_KEY,
  taskPartitionKey,
} from '../../lib/store/schema.ts';
import { CAPTURED_GZIP_THRESHOLD_BYTES } from '../../lib/store/task-item.ts';
import { FIXTURE_NOW, makeCapturedPod, makeTaskId, makeTaskRecord } from '../support/task-fixtures.ts';
import { createTestTable, localDynamoDBClient, type TestTable } from './support.ts';

const NOW = FIXTURE_NOW;
const RETENTION_MS = 3 * 24 * 3_600_000;

let table: TestTable;
let store: DynamoTaskStore;

beforeAll(async () => {
  table = await createTestTable('store');
  store = new DynamoTaskStore({
    client: table.client,
    tableName: table.tableName,
    retentionMs: RETENTION_MS,
  });
});

afterAll(async () => {
  await table?.drop();
});

let taskCounter = 0;
/** A record of a task no other test touches, with a pod name of its own. */
function freshRecord(overrides: Partial<TaskRecord> = {}): TaskRecord {
  taskCounter += 1;
  const id = makeTaskId({ key: `etl_daily/load_orders/run-${taskCounter}/-1` });
  return makeTaskRecord({ id, podName: `load-orders-${taskCounter}-a`, ...overrides });
}

/** The item as DynamoDB holds it, to check the storage attributes that records do not show. */
async function rawItem(pk: string, sk: string, target: TestTable = table) {
  const { Item } = await target.client.send(
    new GetItemCommand({
      TableName: target.tableName,
      Key: { PK: { S: pk }, SK: { S: sk } },
      ConsistentRead: true,
    }),
  );
  return Item;
}

function rawPodPointer(id: TaskId, podName: string) {
  return rawItem(podPartitionKey(id.cluster, id.namespace, podName), 'POD');
}

describe('DynamoTaskStore options', () => {
  it('rejects options that would misbehave, naming the option', () => {
    const client = table.client;
    expect(() => new DynamoTaskStore({ client, tableName: 'x' })).toThrow(/tableName/);
    expect(() => new DynamoTaskStore({ client, tableName: 'tasks', shards: 0 })).toThrow(
      /shards.*1 to 64.*0/,
    );
    expect(() => new DynamoTaskStore({ client, tableName: 'tasks', retentionMs: -5 })).toThrow(/retentionMs/);
    expect(() => new DynamoTaskStore({ client: {} as DynamoDBClient, tableName: 'tasks' })).toThrow(/client/);
    expect(() => new DynamoTaskStore({ client, tableName: 'tasks', shards: 1.5 })).toThrow(StoreInputError);
  });

  it('rejects ids that could alias another key', async () => {
    const record = freshRecord({ id: makeTaskId({ namespace: 'air#flow' }) });
    await expect(store.put(record, NOW)).rejects.toThrow(/namespace must not contain '#'/);
  });
});

describe('put and get', () => {
  it('round-trips a full record and returns it with the version incremented', async () => {
    const record = freshRecord({
      state: 'Recovering',
      cause: undefined,
      disruption: {
        podUid: 'b0a1c2d3-0000-4000-8000-000000000001',
        evidence: [
          {
            source: 'condition DisruptionTarget',
            reason: 'PreemptionByScheduler',
            message: 'preempted',
            at: NOW,
          },
        ],
        nextAttempt: 2,
        goneAt: NOW + 1_000,
        recreateAt: NOW + 3_000,
      },
      orchestratorState: 'running',
      mainExitCode: 0,
      dueAt: NOW + 3_000,
    });
    const stored = await store.put(record, NOW);
    expect(stored).toEqual({ ...record, version: 1 });
    const read = await store.get(record.id);
    expect(read).toEqual({ ...record, version: 1 });
    expect(JSON.stringify(read?.captured)).toBe(JSON.stringify(record.captured));
  });

  it('answers undefined for a task never stored', async () => {
    expect(await store.get(makeTaskId({ key: 'never/stored/run/-1' }))).toBeUndefined();
  });

  it('removes optional fields that a later version no longer has', async () => {
    const first = await store.put(freshRecord({ dueAt: NOW + 5_000, goneUnexplainedAt: NOW }), NOW);
    const { goneUnexplainedAt: _gone, dueAt: _due, ...rest } = first;
    await store.put(rest, NOW);
    const read = await store.get(first.id);
    expect(read).toBeDefined();
    expect('goneUnexplainedAt' in read!).toBe(false);
    expect('dueAt' in read!).toBe(false);
  });
});

describe('optimistic locking', () => {
  // Each writer's change decides how put writes: one conditional write when the pod stays, an
  // old-pod item first and then the conditional write when it moves. Every pairing must be safe.
  const races: Array<[string, (record: TaskRecord) => TaskRecord, (record: TaskRecord) => TaskRecord]> = [
    [
      'two plain updates',
      (r) => ({ ...r, message: 'writer A', recreates: 1 }),
      (r) => ({ ...r, message: 'writer B' }),
    ],
    [
      'two pod changes',
      (r) => ({ ...r, message: 'writer A', podName: `${r.podName}-a` }),
      (r) => ({ ...r, message: 'writer B', podName: `${r.podName}-b` }),
    ],
    [
      'an ending and a plain update',
      (r) => ({ ...r, message: 'writer A', state: 'Succeeded', endedAt: NOW }),
      (r) => ({ ...r, message: 'writer B', recreates: 1 }),
    ],
  ];

  it.each(races)(
    'lets exactly one of two writers win a race of %s; the other gets VersionConflictError',
    async (_, changeA, changeB) => {
      const original = await store.put(freshRecord(), NOW);
      // Two handlers (two Lambda invocations): separate clients, the same version read by both.
      const clientA = localDynamoDBClient();
      const clientB = localDynamoDBClient();
      try {
        const storeA = new DynamoTaskStore({
          client: clientA,
          tableName: table.tableName,
          retentionMs: RETENTION_MS,
        });
        const storeB = new DynamoTaskStore({
          client: clientB,
          tableName: table.tableName,
          retentionMs: RETENTION_MS,
        });
        const [readA, readB] = await Promise.all([storeA.get(original.id), storeB.get(original.id)]);
        expect(readA?.version).toBe(1);
        expect(readB?.version).toBe(1);

        const results = await Promise.allSettled([
          storeA.put(changeA(readA!), NOW),
          storeB.put(changeB(readB!), NOW),
        ]);
        const won = results.filter((result) => result.status === 'fulfilled');
        const lost = results.filter((result) => result.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(VersionConflictError);
        expect((lost[0] as PromiseRejectedResult).reason.expectedVersion).toBe(1);

        const winner = (won[0] as PromiseFulfilledResult<TaskRecord>).value;
        expect(winner.version).toBe(2);
        expect(await store.get(original.id)).toEqual(winner);
        expect(await store.findByPod(winner.id.cluster, winner.id.namespace, winner.podName)).toEqual(winner);
      } finally {
        clientA.destroy();
        clientB.destroy();
      }
    },
  );

  it('lets only one of two writers create the same task', async () => {
    const record = freshRecord();
    const results = await Promise.allSettled([
      store.put({ ...record, message: 'first creator' }, NOW),
      store.put({ ...record, message: 'second creator' }, NOW),
    ]);
    const won = results.filter((result) => result.status === 'fulfilled');
    const lost = results.filter((result) => result.status === 'rejected');
    expect(won).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(VersionConflictError);
    expect(await store.get(record.id)).toEqual((won[0] as PromiseFulfilledResult<TaskRecord>).value);
  });

  it('rejects a write based on an outdated version and keeps the newer record', async () => {
    const v1 = await store.put(freshRecord(), NOW);
    const v2 = await store.put({ ...v1, message: 'newer' }, NOW);
    await expect(store.put({ ...v1, message: 'stale', podName: 'another-pod' }, NOW)).rejects.toBeInstanceOf(
      VersionConflictError,
    );
    await expect(store.put({ ...v1, message: 'stale' }, NOW)).rejects.toBeInstanceOf(VersionConflictError);
    expect(await store.get(v1.id)).toEqual(v2);
  });

  it('rejects an update of a task that was never created', async () => {
    const record = freshRecord({ version: 3 });
    await expect(store.put(record, NOW)).rejects.toBeInstanceOf(VersionConflictError);
    expect(await store.get(record.id)).toBeUndefined();
  });
});

describe('due timers', () => {
  let dueTable: TestTable;
  let dueStore: DynamoTaskStore;

  beforeAll(async () => {
    // A table of its own: due() is table-wide, and the other tests' records must not leak in.
    dueTable = await createTestTable('due');
    dueStore = new DynamoTaskStore({ client: dueTable.client, tableName: dueTable.tableName, shards: 4 });
  });

  afterAll(async () => {
    await dueTable?.drop();
  });

  it('returns exactly the due tasks across shards, oldest first, and honours the limit', async () => {
    const dueOffsets = [-50_000, -40_000, -30_000, -20_000, -10_000, -1_000, 0];
    const futureOffsets = [1, 10_000, 60_000];
    const records = [
      ...dueOffsets.map((offset, index) => freshRecord({ dueAt: NOW + offset, message: `due ${index}` })),
      ...futureOffsets.map((offset, index) =>
        freshRecord({ dueAt: NOW + offset, message: `later ${index}` }),
      ),
      freshRecord({ message: 'nothing pending' }),
    ];
    // Written in shuffled order, so the order of the answer comes from dueAt, not from the writes.
    const shuffled = [records[4], records[9], records[0], records[6], records[10], records[2]]
      .concat([records[8], records[1], records[5], records[3], records[7]])
      .map((record) => record!);
    for (const record of shuffled) await dueStore.put(record, NOW);

    // The test only means something if the due tasks really are spread over several shards.
    const shards = new Set<string>();
    for (const record of records.slice(0, dueOffsets.length)) {
      const item = await rawItem(taskPartitionKey(record.id), TASK_SORT_KEY, dueTable).then((i) => i!);
      shards.add(item.dueShard!.S!);
    }
    expect(shards.size).toBeGreaterThan(1);
    expect((await rawItem(taskPartitionKey(records[10]!.id), TASK_SORT_KEY, dueTable))?.dueShard).toBe(
      undefined,
    );

    const due = await dueStore.due(NOW, 100);
    expect(due.map((record) => record.message)).toEqual(dueOffsets.map((_, index) => `due ${index}`));
    expect(due.every((record) => record.version === 1)).toBe(true);

    const firstThree = await dueStore.due(NOW, 3);
    expect(firstThree.map((record) => record.message)).toEqual(['due 0', 'due 1', 'due 2']);

    const justOne = await dueStore.due(NOW, 1);
    expect(justOne.map((record) => record.message)).toEqual(['due 0']);

    const later = await dueStore.due(NOW + 60_000, 100);
    expect(later).toHaveLength(dueOffsets.length + futureOffsets.length);
  });

  it('stops returning a task once its dueAt is cleared, and returns it again once set', async () => {
    const due = await dueStore.due(NOW, 100);
    const oldest = due[0]!;
    const { dueAt: _cleared, ...withoutTimer } = oldest;
    const cleared = await dueStore.put(withoutTimer, NOW);

    const after = await dueStore.due(NOW, 100);
    expect(after.map((record) => record.message)).not.toContain(oldest.message);
    expect(after).toHaveLength(due.length - 1);
    const item = await rawItem(taskPartitionKey(oldest.id), TASK_SORT_KEY, dueTable);
    expect(item?.dueShard).toBeUndefined();
    expect(item?.dueAt).toBeUndefined();

    await dueStore.put({ ...cleared, dueAt: NOW + 120_000 }, NOW);
    expect((await dueStore.due(NOW, 100)).map((record) => record.message)).not.toContain(oldest.message);
    const atTwoMinutes = await dueStore.due(NOW + 120_000, 100);
    expect(atTwoMinutes.at(-1)?.message).toBe(oldest.message);
  });

  it('queries the due-timer index per shard and never scans', async () => {
    // Records which DynamoDB operations due() sends, to prove there is no Scan among them.
    const client = localDynamoDBClient();
    const operations: string[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        operations.push(
          `${context.commandName}${(args.input as { IndexName?: string }).IndexName ? ':index' : ''}`,
        );
        return next(args);
      },
      { step: 'initialize', name: 'recordOperations' },
    );
    try {
      const observed = new DynamoTaskStore({ client, tableName: dueTable.tableName, shards: 4 });
      await observed.due(NOW, 100);
      expect(operations.filter((operation) => operation === 'QueryCommand:index')).toHaveLength(4);
      expect(operations.some((operation) => operation.startsWith('Scan'))).toBe(false);
    } finally {
      client.destroy();
    }
    expect(DUE_INDEX_NAME).toBe('due-timers');
  });

  it('drops stale index entries: only records that are still due come back', async () => {
    const cleared = await dueStore.put(freshRecord({ message: 'timer cleared' }), NOW);
    const moved = await dueStore.put(freshRecord({ dueAt: NOW + 600_000, message: 'timer moved on' }), NOW);
    await dueStore.put(freshRecord({ dueAt: NOW - 1, message: 'really due' }), NOW);
    // The real index is eventually consistent and may still list both as due; DynamoDB Local's
    // index never lags, so the lag is injected into one index query's answer.
    const client = localDynamoDBClient();
    let injected = false;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === 'QueryCommand' && !injected) {
          injected = true;
          const stale = [cleared, moved].map((record) => ({
            PK: { S: taskPartitionKey(record.id) },
            SK: { S: TASK_SORT_KEY },
            dueShard: { S: 'DUE#0' },
            dueAt: { N: String(NOW - 100_000) },
          }));
          (result.output as QueryCommandOutput).Items!.unshift(...stale);
        }
        return result;
      },
      { step: 'initialize', name: 'staleIndex' },
    );
    try {
      const lagging = new DynamoTaskStore({ client, tableName: dueTable.tableName, shards: 4 });
      const due = await lagging.due(NOW, 100);
      expect(injected).toBe(true);
      expect(due.map((record) => record.message)).toContain('really due');
      expect(due.map((record) => record.message)).not.toContain('timer cleared');
      expect(due.map((record) => record.message)).not.toContain('timer moved on');
      expect(due.every((record) => record.dueAt! <= NOW)).toBe(true);
    } finally {
      client.destroy();
    }
  });

  it('rejects a limit that is not a positive whole number', async () => {
    await expect(dueStore.due(NOW, 0)).rejects.toThrow(/limit must be a positive whole number, got 0/);
  });
});

describe('TTL', () => {
  it('sets expiresAt on terminal records, not on live ones; the pod index entry leaves with the item', async () => {
    const live = await store.put(freshRecord(), NOW);
    expect((await rawItem(taskPartitionKey(live.id), TASK_SORT_KEY))?.expiresAt).toBeUndefined();

    const endedAt = NOW + 61_500;
    const ended = await store.put({ ...live, state: 'Succeeded', endedAt, mainExitCode: 0 }, NOW + 62_000);
    const expected = String(Math.ceil((endedAt + RETENTION_MS) / 1000));
    expect((await rawItem(taskPartitionKey(ended.id), TASK_SORT_KEY))?.expiresAt).toEqual({ N: expected });
    // No pointer item of its own to expire: the task item is the pod's entry in the index.
    expect(await rawPodPointer(ended.id, ended.podName)).toBeUndefined();
    expect(await store.findByPod(ended.id.cluster, ended.id.namespace, ended.podName)).toEqual(ended);
  });

  it('sets expiresAt for Failed and Deleted records too', async () => {
    for (const state of ['Failed', 'Deleted'] as const) {
      const record = await store.put(freshRecord({ state, endedAt: NOW, cause: undefined }), NOW);
      const item = await rawItem(taskPartitionKey(record.id), TASK_SORT_KEY);
      expect(item?.expiresAt).toEqual({ N: String(Math.ceil((NOW + RETENTION_MS) / 1000)) });
    }
  });

  it('sets expiresAt on seen-event items', async () => {
    await store.markSeen('evt-ttl-1', NOW, 600_000);
    const item = await rawItem(seenPartitionKey('evt-ttl-1'), SEEN_SORT_KEY);
    expect(item?.expiresAt).toEqual({ N: String(Math.ceil((NOW + 600_000) / 1000)) });
  });

  it('sets expiresAt on audit items', async () => {
    const record = await store.put(freshRecord(), NOW);
    await store.appendAudit(record.id, [auditEntry(NOW + 5, 'delete-pod')]);
    const { Items } = await table.client.send(
      new QueryCommand({
        TableName: table.tableName,
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :audit)',
        ExpressionAttributeValues: { ':pk': { S: taskPartitionKey(record.id) }, ':audit': { S: 'AUDIT#' } },
      }),
    );
    expect(Items).toHaveLength(1);
    expect(Items![0]!.expiresAt).toEqual({ N: String(Math.ceil((NOW + 5 + RETENTION_MS) / 1000)) });
  });
});

describe('captured pod spec size', () => {
  function capturedWithEnv(count: number, value: (index: number) => string) {
    const captured = makeCapturedPod();
    const base = (captured.spec.containers as Array<{ env: unknown[] }>)[0]!;
    for (let index = 0; index < count; index++)
      base.env.push({ name: `SETTING_${index}`, value: value(index) });
    return captured;
  }

  it('stores a small spec as JSON text', async () => {
    const record = await store.put(freshRecord(), NOW);
    const item = await rawItem(taskPartitionKey(record.id), TASK_SORT_KEY);
    expect(item?.captured?.S).toBe(JSON.stringify(record.captured));
    expect(item?.capturedGz).toBeUndefined();
  });

  it('compresses a large spec and reads it back byte for byte', async () => {
    const captured = capturedWithEnv(2_000, (index) => `value-${index}-${'x'.repeat(40)}`);
    const json = JSON.stringify(captured);
    expect(json.length).toBeGreaterThan(CAPTURED_GZIP_THRESHOLD_BYTES * 10);
    const record = await store.put(freshRecord({ captured }), NOW);

    const item = await rawItem(taskPartitionKey(record.id), TASK_SORT_KEY);
    expect(item?.captured).toBeUndefined();
    const compressed = item?.capturedGz?.B as Uint8Array;
    expect(compressed.byteLength).toBeGreaterThan(0);
    expect(compressed.byteLength).toBeLessThan(json.length / 4);

    const read = await store.get(record.id);
    expect(JSON.stringify(read?.captured)).toBe(json);
    expect(read).toEqual(record);
  });

  it('rejects a spec too large even compressed, names the task and size, and stores nothing', async () => {
    // Random bytes do not compress: 400 KB of them cannot fit however they are encoded.
    const captured = makeCapturedPod();
    captured.metadata.annotations['example.com/blob'] = randomBytes(400_000).toString('base64');
    const record = freshRecord({ captured });

    const error = await store.put(record, NOW).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RecordTooLargeError);
    expect((error as Error).message).toContain(record.id.key);
    expect((error as Error).message).toMatch(/about \d+ bytes .*gzip-compressed.*limit of 358400/);
    expect(await store.get(record.id)).toBeUndefined();
    expect(await store.findByPod(record.id.cluster, record.id.namespace, record.podName)).toBeUndefined();
  });

  it('rejects a too-large update and keeps the stored version', async () => {
    const stored = await store.put(freshRecord(), NOW);
    const captured = makeCapturedPod();
    captured.metadata.annotations['example.com/blob'] = randomBytes(400_000).toString('base64');
    await expect(store.put({ ...stored, captured }, NOW)).rejects.toBeInstanceOf(RecordTooLargeError);
    expect(await store.get(stored.id)).toEqual(stored);
  });
});

describe('findByPod', () => {
  it('finds the task of a pod right after the task is written', async () => {
    const record = await store.put(freshRecord(), NOW);
    expect(await store.findByPod(record.id.cluster, record.id.namespace, record.podName)).toEqual(record);
    expect(await store.findByPod(record.id.cluster, record.id.namespace, 'no-such-pod')).toBeUndefined();
    expect(await store.findByPod('other-cluster', record.id.namespace, record.podName)).toBeUndefined();
  });

  it('follows a re-created pod with the same name, and a new try with a new name', async () => {
    const v1 = await store.put(freshRecord(), NOW);
    const { cluster, namespace } = v1.id;
    // Preemption: same name, new uid, attempt 2.
    const v2 = await store.put({ ...v1, attempt: 2, podUid: 'uid-attempt-2' }, NOW + 10_000);
    expect(await store.findByPod(cluster, namespace, v1.podName)).toEqual(v2);

    // A new try: the orchestrator's new pod has a new name.
    const newPod = `${v1.podName}-try2`;
    const v3 = await store.put(
      { ...v2, tryNumber: 2, highestTry: 2, attempt: 1, podName: newPod },
      NOW + 20_000,
    );
    expect(await store.findByPod(cluster, namespace, newPod)).toEqual(v3);
    // Late events about the old pod still find the task, which now supervises the new pod.
    expect((await store.findByPod(cluster, namespace, v1.podName))?.podName).toBe(newPod);
    // The old pointer is no longer refreshed, so it expires instead of lingering.
    expect((await rawPodPointer(v1.id, v1.podName))?.expiresAt).toEqual({
      N: String(Math.ceil((NOW + 20_000 + RETENTION_MS) / 1000)),
    });
    expect((await rawPodPointer(v1.id, newPod))?.expiresAt).toBeUndefined();
  });

  it('points at the task that owned a pod name last', async () => {
    const first = await store.put(freshRecord(), NOW);
    const { cluster, namespace } = first.id;
    const sharedName = first.podName;
    const firstMoved = await store.put({ ...first, podName: `${sharedName}-b` }, NOW + 1_000);

    // Another task takes the freed name, then the first task moves once more: the first task must
    // not put an expiry on the pointer that now belongs to the other task.
    const second = await store.put(freshRecord({ podName: `${sharedName}-b` }), NOW + 2_000);
    expect(await store.findByPod(cluster, namespace, `${sharedName}-b`)).toEqual(second);
    const firstAgain = await store.put({ ...firstMoved, podName: `${sharedName}-c` }, NOW + 3_000);
    expect(firstAgain.version).toBe(3);
    expect(await store.findByPod(cluster, namespace, `${sharedName}-b`)).toEqual(second);
    // The first task's old-pod item for the name is there, and the task that holds it now wins.
    expect((await rawPodPointer(second.id, `${sharedName}-b`))?.taskPK).toEqual({
      S: taskPartitionKey(first.id),
    });
    expect(await store.findByPod(cluster, namespace, `${sharedName}-c`)).toEqual(firstAgain);
  });
});

function auditEntry(at: number, what: string, podName = 'load-orders-x'): AuditEntry {
  return {
    at,
    what,
    podName,
    podUid: 'uid-1',
    actor: 'reaper',
    outcome: 'deleted',
    evidence: [{ source: 'container base', reason: 'Completed', message: 'exit code 0', at: at - 1 }],
  };
}

describe('audit', () => {
  it('sends the lines of concurrent calls in shared requests, 25 items at most, each call whole', async () => {
    const ids = Array.from({ length: 30 }, () => freshRecord().id);
    const { store: observed, sent, close } = recordingStore();
    try {
      // One call of three lines among 29 of one: whole calls only, so 25 + 5 cannot split it.
      await Promise.all(
        ids.map((id, n) =>
          observed.appendAudit(
            id,
            n === 12
              ? [auditEntry(NOW, 'a'), auditEntry(NOW, 'b'), auditEntry(NOW, 'c')]
              : [auditEntry(NOW, `line-${n}`)],
          ),
        ),
      );
      const batches = sent.filter((request) => request.command === 'BatchWriteItemCommand');
      const sizes = batches.map(
        (request) => Object.values(request.input.RequestItems as Record<string, unknown[]>)[0]!.length,
      );
      expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(32);
      expect(batches.length).toBe(2);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(25);
    } finally {
      close();
    }
    expect((await store.listAudit(ids[12]!)).map((entry) => entry.what).sort()).toEqual(['a', 'b', 'c']);
    for (const [n, id] of ids.entries())
      if (n !== 12) expect((await store.listAudit(id)).map((entry) => entry.what)).toEqual([`line-${n}`]);
  });

  it('rejects every call whose shared request failed', async () => {
    const client = localDynamoDBClient({ maxAttempts: 1 });
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'BatchWriteItemCommand')
          throw new Error('injected: BatchWriteItem refused');
        return next(args);
      },
      { step: 'initialize', name: 'refuseBatchWrites' },
    );
    try {
      const failing = new DynamoTaskStore({ client, tableName: table.tableName, retentionMs: RETENTION_MS });
      const ids = [freshRecord().id, freshRecord().id];
      const outcomes = await Promise.allSettled(
        ids.map((id) => failing.appendAudit(id, [auditEntry(NOW, 'never-written')])),
      );
      expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
      for (const id of ids) expect(await store.listAudit(id)).toEqual([]);
    } finally {
      client.destroy();
    }
  });

  it('lists entries newest first, honours the limit, and keeps tasks apart', async () => {
    const record = await store.put(freshRecord(), NOW);
    const other = await store.put(freshRecord(), NOW);
    await store.appendAudit(record.id, [
      auditEntry(NOW + 2, 'create-pod'),
      auditEntry(NOW + 1, 'delete-pod'),
    ]);
    // Same millisecond, one call: the order of the call is kept.
    await store.appendAudit(record.id, [
      auditEntry(NOW + 3, 'reap-dry-run'),
      auditEntry(NOW + 3, 'delete-pod-2'),
    ]);
    await store.appendAudit(other.id, [auditEntry(NOW + 10, 'other-task')]);

    const all = await store.listAudit(record.id);
    expect(all.map((entry) => entry.what)).toEqual([
      'delete-pod-2',
      'reap-dry-run',
      'create-pod',
      'delete-pod',
    ]);
    expect(all[2]).toEqual(auditEntry(NOW + 2, 'create-pod'));
    expect((await store.listAudit(record.id, 2)).map((entry) => entry.what)).toEqual([
      'delete-pod-2',
      'reap-dry-run',
    ]);
    expect((await store.listAudit(other.id)).map((entry) => entry.what)).toEqual(['other-task']);
    // Audit items share the task's partition but never disturb the task record.
    expect(await store.get(record.id)).toEqual(record);
  });

  it('writes more entries than one batch holds', async () => {
    const record = await store.put(freshRecord(), NOW);
    const entries = Array.from({ length: 60 }, (_, index) => auditEntry(NOW + index, `step-${index}`));
    await store.appendAudit(record.id, entries);
    const listed = await store.listAudit(record.id, 1_000);
    expect(listed).toHaveLength(60);
    expect(listed[0]?.what).toBe('step-59');
    expect(listed.at(-1)?.what).toBe('step-0');
    expect(await store.listAudit(record.id, 7)).toHaveLength(7);
  });

  it('accepts an empty append and rejects entries without a usable time', async () => {
    const record = await store.put(freshRecord(), NOW);
    await store.appendAudit(record.id, []);
    expect(await store.listAudit(record.id)).toEqual([]);
    await expect(store.appendAudit(record.id, [auditEntry(Number.NaN, 'bad')])).rejects.toThrow(
      /epoch milliseconds/,
    );
  });
});

describe('markSeen', () => {
  it('is true the first time, false while remembered, true again after it expired', async () => {
    expect(await store.markSeen('evt-1', NOW, 60_000)).toBe(true);
    expect(await store.markSeen('evt-1', NOW + 1_000, 60_000)).toBe(false);
    expect(await store.markSeen('evt-1', NOW + 59_000, 60_000)).toBe(false);
    expect(await store.markSeen('evt-2', NOW + 1_000, 60_000)).toBe(true);
    // DynamoDB deletes expired items only eventually: an expired one must not count as seen.
    expect(await store.markSeen('evt-1', NOW + 60_000, 60_000)).toBe(true);
    expect(await store.markSeen('evt-1', NOW + 61_000, 60_000)).toBe(false);
  });

  it('rejects an empty event id or a non-positive ttl', async () => {
    await expect(store.markSeen('', NOW, 1_000)).rejects.toThrow(/event id must be a non-empty string/);
    await expect(store.markSeen('evt-x', NOW, 0)).rejects.toThrow(/ttlMs must be a positive number/);
  });
});

describe('failed writes', () => {
  it('propagates throttling after the SDK retried it, and leaves the record as it was', async () => {
    const stored = await store.put(freshRecord(), NOW);
    // DynamoDB Local never throttles, so the throttling answer is injected in the SDK's middleware
    // stack, inside its retry loop: this is the one fake of AWS behaviour here.
    const client = localDynamoDBClient({ maxAttempts: 2 });
    let attempts = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'PutItemCommand') return next(args);
        attempts += 1;
        throw new ProvisionedThroughputExceededException({
          message: 'The level of configured provisioned throughput for the table was exceeded',
          $metadata: { httpStatusCode: 400 },
        });
      },
      { step: 'finalizeRequest', priority: 'low', name: 'throttlePutItem' },
    );
    try {
      const throttled = new DynamoTaskStore({
        client,
        tableName: table.tableName,
        retentionMs: RETENTION_MS,
      });
      const error = await throttled
        .put({ ...stored, message: 'never stored' }, NOW)
        .catch((caught) => caught);
      expect(error).toBeInstanceOf(ProvisionedThroughputExceededException);
      expect(attempts).toBe(2);
    } finally {
      client.destroy();
    }
    expect(await store.get(stored.id)).toEqual(stored);
  });

  it('leaves the task as it was when DynamoDB rejects the old-pod item of a move', async () => {
    const stored = await store.put(freshRecord(), NOW);
    // A real failure inside DynamoDB: the old-pod item is made invalid on its way out, so DynamoDB
    // refuses it, and the task write that would follow it is never sent.
    const client = localDynamoDBClient();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const item = (args.input as PutItemCommandInput).Item;
        if (context.commandName === 'PutItemCommand' && item?.PK?.S?.startsWith('POD#'))
          item.since = { N: 'not-a-number' };
        return next(args);
      },
      { step: 'initialize', name: 'corruptOldPodPut' },
    );
    try {
      const failing = new DynamoTaskStore({ client, tableName: table.tableName, retentionMs: RETENTION_MS });
      const newPod = `${stored.podName}-next`;
      const error = await failing.put({ ...stored, podName: newPod }, NOW, stored).catch((caught) => caught);
      expect(error).toBeInstanceOf(Error);
      expect(error).not.toBeInstanceOf(VersionConflictError);
      expect((error as Error).name).toBe('ValidationException');
      expect(await store.get(stored.id)).toEqual(stored);
      expect(await store.findByPod(stored.id.cluster, stored.id.namespace, newPod)).toBeUndefined();
      expect(await store.findByPod(stored.id.cluster, stored.id.namespace, stored.podName)).toEqual(stored);
    } finally {
      client.destroy();
    }
  });

  it('never overwrites after a lost response: the repeated write is a conflict', async () => {
    const stored = await store.put(freshRecord(), NOW);
    // The write reaches DynamoDB, but its answer is lost on the way back (a timeout, a dropped
    // connection): the caller cannot know it succeeded and tries again with the same version.
    const client = localDynamoDBClient({ maxAttempts: 1 });
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === 'PutItemCommand') throw new Error('socket hang up');
        return result;
      },
      { step: 'initialize', name: 'loseResponse' },
    );
    try {
      const flaky = new DynamoTaskStore({ client, tableName: table.tableName, retentionMs: RETENTION_MS });
      await expect(flaky.put({ ...stored, message: 'first try' }, NOW)).rejects.toThrow('socket hang up');
    } finally {
      client.destroy();
    }
    await expect(store.put({ ...stored, message: 'second try' }, NOW)).rejects.toBeInstanceOf(
      VersionConflictError,
    );
    expect(await store.get(stored.id)).toEqual({ ...stored, message: 'first try', version: 2 });
  });
});

/** A store on its own client that records every request it sends, with its input. */
function recordingStore(): {
  store: DynamoTaskStore;
  sent: Array<{ command: string; input: Record<string, unknown> }>;
  close: () => void;
} {
  const client = localDynamoDBClient();
  const sent: Array<{ command: string; input: Record<string, unknown> }> = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      sent.push({
        command: context.commandName ?? '',
        input: structuredClone(args.input as Record<string, unknown>),
      });
      return next(args);
    },
    { step: 'initialize', name: 'recordRequests' },
  );
  return {
    store: new DynamoTaskStore({ client, tableName: table.tableName, retentionMs: RETENTION_MS }),
    sent,
    close: () => client.destroy(),
  };
}

describe('getMany', () => {
  it('reads many records in batches of at most 100 and leaves out tasks never stored', async () => {
    const stored: TaskRecord[] = [];
    for (let index = 0; index < 130; index++) stored.push(await store.put(freshRecord(), NOW));
    const { store: observed, sent, close } = recordingStore();
    try {
      const ids = [...stored.map((record) => record.id), makeTaskId({ key: 'never/stored/run/-1' })];
      // A task named twice is read once (BatchGetItem refuses a key named twice).
      const records = await observed.getMany([...ids, stored[0]!.id]);
      const byKey = new Map(records.map((record) => [record.id.key, record]));
      expect(records).toHaveLength(130);
      for (const record of stored) expect(byKey.get(record.id.key)).toEqual(record);
      const batches = sent.filter((request) => request.command === 'BatchGetItemCommand');
      expect(batches.length).toBeGreaterThanOrEqual(2);
      for (const batch of batches) {
        const keys = Object.values(
          batch.input.RequestItems as Record<string, { Keys: unknown[]; ConsistentRead: boolean }>,
        )[0]!;
        expect(keys.Keys.length).toBeLessThanOrEqual(100);
        expect(keys.ConsistentRead).toBe(true);
      }
      expect(await observed.getMany([])).toEqual([]);
    } finally {
      close();
    }
  });
});

describe('writes of what changed (put with the record as read)', () => {
  it('sends an UpdateItem of the changed fields only, never the captured spec again', async () => {
    const v1 = await store.put(freshRecord({ state: 'Pending', mainStarted: false }), NOW);
    const { store: observed, sent, close } = recordingStore();
    try {
      const next = { ...v1, state: 'Running' as const, mainStarted: true, message: 'started' };
      const v2 = await observed.put(next, NOW + 1_000, v1);
      expect(v2.version).toBe(2);
      expect(sent.map((request) => request.command)).toEqual(['UpdateItemCommand']);
      const update = JSON.stringify(sent[0]!.input);
      expect(update).not.toContain('"captured"');
      expect(update).not.toContain('"history"');
      expect(sent[0]!.input.ConditionExpression).toContain('#version = :expected');
      expect(await store.get(v1.id)).toEqual(v2);
      const item = await rawItem(taskPartitionKey(v1.id), TASK_SORT_KEY);
      expect(item?.captured?.S).toBe(JSON.stringify(v1.captured));
    } finally {
      close();
    }
  });

  it('removes fields the new version no longer has', async () => {
    const v1 = await store.put(freshRecord({ dueAt: NOW + 5_000, goneUnexplainedAt: NOW - 1 }), NOW);
    const { dueAt: _dueAt, goneUnexplainedAt: _gone, ...rest } = v1;
    const v2 = await store.put(rest, NOW, v1);
    expect(await store.get(v1.id)).toEqual(v2);
    const item = await rawItem(taskPartitionKey(v1.id), TASK_SORT_KEY);
    expect(item?.dueAt).toBeUndefined();
    expect(item?.dueShard).toBeUndefined();
    expect(item?.goneUnexplainedAt).toBeUndefined();
  });

  it('is conditional on the version: an update from an outdated read is a conflict and changes nothing', async () => {
    const v1 = await store.put(freshRecord(), NOW);
    const v2 = await store.put({ ...v1, message: 'the winner' }, NOW, v1);
    await expect(store.put({ ...v1, message: 'the loser' }, NOW, v1)).rejects.toBeInstanceOf(
      VersionConflictError,
    );
    expect(await store.get(v1.id)).toEqual(v2);
  });

  it('keeps findByPod in step when the update changes the pod, and lets the old pod item expire', async () => {
    const v1 = await store.put(freshRecord(), NOW);
    const { cluster, namespace } = v1.id;
    const { store: observed, sent, close } = recordingStore();
    try {
      const newPod = `${v1.podName}-try2`;
      const v2 = await observed.put({ ...v1, tryNumber: 2, highestTry: 2, podName: newPod }, NOW + 1_000, v1);
      const update = sent.find((request) => request.command === 'UpdateItemCommand');
      expect(update).toBeDefined();
      expect(JSON.stringify(update?.input)).not.toContain('"captured"');
      expect((await rawPodPointer(v1.id, v1.podName))?.expiresAt).toEqual({
        N: String(Math.ceil((NOW + 1_000 + RETENTION_MS) / 1000)),
      });
      expect(await store.findByPod(cluster, namespace, newPod)).toEqual(v2);
      expect((await store.findByPod(cluster, namespace, v1.podName))?.podName).toBe(newPod);

      const endedAt = NOW + 2_000;
      const v3 = await observed.put({ ...v2, state: 'Succeeded', endedAt, mainExitCode: 0 }, endedAt, v2);
      const expected = String(Math.ceil((endedAt + RETENTION_MS) / 1000));
      expect((await rawItem(taskPartitionKey(v3.id), TASK_SORT_KEY))?.expiresAt).toEqual({ N: expected });
      expect(await rawPodPointer(v3.id, newPod)).toBeUndefined();
      expect(await store.findByPod(cluster, namespace, newPod)).toEqual(v3);
      expect(await store.get(v1.id)).toEqual(v3);
    } finally {
      close();
    }
  });

  it('sends one write per record write, and the old-pod item first when the pod changes', async () => {
    const v1 = await store.put(freshRecord(), NOW);
    const { cluster, namespace } = v1.id;
    const { store: observed, sent, close } = recordingStore();
    try {
      const newPod = `${v1.podName}-try2`;
      const v2 = await observed.put({ ...v1, tryNumber: 2, highestTry: 2, podName: newPod }, NOW + 1_000, v1);
      const endedAt = NOW + 2_000;
      const v3 = await observed.put({ ...v2, state: 'Succeeded', endedAt, mainExitCode: 0 }, endedAt, v2);
      // No transaction (twice the write units) and no conditional write bound to fail.
      expect(sent.map((request) => request.command)).toEqual([
        'PutItemCommand',
        'UpdateItemCommand',
        'UpdateItemCommand',
      ]);
      expect(await store.get(v1.id)).toEqual(v3);
      expect((await store.findByPod(cluster, namespace, v1.podName))?.podName).toBe(newPod);
      expect(await store.findByPod(cluster, namespace, newPod)).toEqual(v3);
    } finally {
      close();
    }
  });

  it('keeps findByPod in step when a task written whole moves to a new pod', async () => {
    // Written whole (no record as read): the move is seen in the item the write replaced.
    const v1 = await store.put(freshRecord({ state: 'Succeeded', endedAt: undefined, mainExitCode: 0 }), NOW);
    const { cluster, namespace } = v1.id;
    const newPod = `${v1.podName}-b`;
    const v2 = await store.put({ ...v1, podName: newPod, message: 'moved' }, NOW + 5_000);
    expect(await store.get(v1.id)).toEqual(v2);
    expect(await store.findByPod(cluster, namespace, newPod)).toEqual(v2);
    expect(await store.findByPod(cluster, namespace, v1.podName)).toEqual(v2);
  });

  it('refuses an update that would make the item too large, and keeps the stored version', async () => {
    const v1 = await store.put(freshRecord(), NOW);
    const captured = makeCapturedPod();
    captured.metadata.annotations['example.com/blob'] = randomBytes(400_000).toString('base64');
    await expect(store.put({ ...v1, captured }, NOW, v1)).rejects.toBeInstanceOf(RecordTooLargeError);
    expect(await store.get(v1.id)).toEqual(v1);
  });

  it('writes the whole item when the record given as read is of another version', async () => {
    const v1 = await store.put(freshRecord(), NOW);
    const v2 = await store.put({ ...v1, message: 'second' }, NOW, v1);
    const { store: observed, sent, close } = recordingStore();
    try {
      const v3 = await observed.put({ ...v2, message: 'third' }, NOW, v1);
      expect(sent.map((request) => request.command)).toEqual(['PutItemCommand']);
      expect(await store.get(v1.id)).toEqual(v3);
    } finally {
      close();
    }
  });
});

describe('due lanes and resync passes', () => {
  let laneTable: TestTable;
  let laneStore: DynamoTaskStore;

  beforeAll(async () => {
    laneTable = await createTestTable('lanes');
    laneStore = new DynamoTaskStore({ client: laneTable.client, tableName: laneTable.tableName, shards: 4 });
  });

  afterAll(async () => {
    await laneTable?.drop();
  });

  // Running with its main container started: due only for its resync.
  const resyncOnly = (dueAt: number, message: string, cluster = 'eks-prod') =>
    freshRecord({ id: makeTaskId({ cluster, key: `lanes/${message}/run/-1` }), dueAt, message });
  // Waiting for its re-create's back-off: due for a deadline.
  const recreateDue = (dueAt: number, message: string) =>
    freshRecord({
      id: makeTaskId({ key: `lanes/${message}/run/-1` }),
      state: 'Recovering',
      message,
      dueAt,
      disruption: {
        podUid: 'uid-old',
        evidence: [],
        nextAttempt: 2,
        goneAt: dueAt - 2_000,
        recreateAt: dueAt,
      },
    });

  it('answers every due deadline before any due resync, however much older the resyncs are', async () => {
    const resyncs = [-600_000, -500_000, -400_000].map((offset, index) =>
      resyncOnly(NOW + offset, `resync ${index}`),
    );
    const deadlines = [-2_000, -1_000].map((offset, index) => recreateDue(NOW + offset, `deadline ${index}`));
    for (const record of [...resyncs, ...deadlines]) await laneStore.put(record, NOW - 700_000);
    await laneStore.put(recreateDue(NOW + 5_000, 'deadline later'), NOW - 700_000);

    const due = await laneStore.due(NOW, 100);
    expect(due.map((record) => record.message)).toEqual([
      'deadline 0',
      'deadline 1',
      'resync 0',
      'resync 1',
      'resync 2',
    ]);
    // A round of two holds the deadlines, not the three older resyncs.
    expect((await laneStore.due(NOW, 2)).map((record) => record.message)).toEqual([
      'deadline 0',
      'deadline 1',
    ]);
    // The record reads back its own due time; only the index key is set apart.
    expect((await laneStore.get(resyncs[0]!.id))?.dueAt).toBe(NOW - 600_000);
    const item = await rawItem(taskPartitionKey(resyncs[0]!.id), TASK_SORT_KEY, laneTable);
    expect(Number(item?.dueAt?.N)).toBeGreaterThan(NOW * 100);
  });

  it('passes over the entries a skip names by their keys, without reading their records', async () => {
    const client = localDynamoDBClient();
    const requests: string[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        requests.push(context.commandName ?? '');
        if (context.commandName === 'BatchGetItemCommand') {
          const keys = Object.values(
            (args.input as { RequestItems: Record<string, { Keys: unknown[] }> }).RequestItems,
          ).flatMap((request) => request.Keys);
          requests.push(`keys:${keys.length}`);
        }
        return next(args);
      },
      { step: 'initialize', name: 'recordRequests' },
    );
    try {
      const skipping = new DynamoTaskStore({ client, tableName: laneTable.tableName, shards: 4 });
      const seen: Array<{ resync: boolean; cluster: string }> = [];
      const due = await skipping.due(NOW, 100, {
        skip: (entry) => {
          seen.push({ resync: entry.resync, cluster: entry.cluster });
          return entry.resync;
        },
      });
      expect(due.map((record) => record.message)).toEqual(['deadline 0', 'deadline 1']);
      expect(seen.filter((entry) => entry.resync)).toHaveLength(3);
      expect(seen.every((entry) => entry.cluster === 'eks-prod')).toBe(true);
      // Only the two deadlines' records were read.
      expect(requests).toContain('keys:2');
      expect(requests.filter((request) => request.startsWith('keys:'))).toEqual(['keys:2']);
    } finally {
      client.destroy();
    }
  });

  it("lists a cluster's resync entries, and leaves out deadlines, ended tasks and other clusters", async () => {
    const other = await laneStore.put(resyncOnly(NOW + 60_000, 'other cluster', 'eks-other'), NOW);
    const ended = await laneStore.put(
      freshRecord({ id: makeTaskId({ key: 'lanes/ended/run/-1' }), state: 'Succeeded', endedAt: NOW }),
      NOW,
    );
    const future = await laneStore.put(resyncOnly(NOW + 600_000, 'resync later'), NOW);
    const entries = await laneStore.resyncEntries('eks-prod');
    const keys = entries.map((entry) => entry.id.key).sort();
    expect(keys).toEqual(
      ['lanes/resync 0/run/-1', 'lanes/resync 1/run/-1', 'lanes/resync 2/run/-1', future.id.key].sort(),
    );
    expect(entries.find((entry) => entry.id.key === future.id.key)).toEqual({
      id: future.id,
      dueAt: NOW + 600_000,
    });
    expect(keys).not.toContain(other.id.key);
    expect(keys).not.toContain(ended.id.key);
    expect((await laneStore.resyncEntries('eks-other')).map((entry) => entry.id)).toEqual([other.id]);
  });

  it('keeps the latest resync pass per cluster and never moves it back', async () => {
    expect(await laneStore.resyncPasses()).toEqual(new Map());
    await laneStore.noteResyncPass('eks-prod', NOW);
    await laneStore.noteResyncPass('eks-other', NOW - 5_000);
    await laneStore.noteResyncPass('eks-prod', NOW - 60_000);
    expect(await laneStore.resyncPasses()).toEqual(
      new Map([
        ['eks-prod', NOW],
        ['eks-other', NOW - 5_000],
      ]),
    );
    await laneStore.noteResyncPass('eks-prod', NOW + 300_000);
    expect((await laneStore.resyncPasses()).get('eks-prod')).toBe(NOW + 300_000);
    await expect(laneStore.noteResyncPass('a#b', NOW)).rejects.toThrow(/cluster must be/);
  });
});
