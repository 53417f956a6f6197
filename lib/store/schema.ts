import { createHash } from 'node:crypto';
import type { CreateTableCommandInput, UpdateTimeToLiveCommandInput } from '@aws-sdk/client-dynamodb';
import type { TaskId } from '../core/task.ts';

/**
 * The one table's layout. The store, the integration tests and the CDK stack all build the table
 * from `tableDefinition`, so the three cannot drift apart.
 *
 * | item        | PK                                  | SK                          |
 * |-------------|-------------------------------------|-----------------------------|
 * | task        | TASK#<cluster>#<namespace>#<key>    | TASK                        |
 * | audit line  | TASK#<cluster>#<namespace>#<key>    | AUDIT#<at, 15 digits>#<seq> |
 * | old pod     | POD#<cluster>#<namespace>#<podName> | POD                         |
 * | seen event  | SEEN#<eventId>                      | SEEN                        |
 * | resync pass | RESYNC#PASSES                       | <cluster>                   |
 *
 * Task items that have a `dueAt` also carry `dueShard` (DUE#<n>), which puts them in the sparse
 * due-timer index (partition `dueShard`, sort `dueAt`): the timer queries each shard for
 * `dueAt <= now` and never scans. Sharding spreads the timer's reads and the index's writes over
 * several partitions instead of one hot `DUE` partition.
 *
 * Every task item also carries `listShard` (LIST#<n>), which puts it in the task-listing index
 * (partition `listShard`, sort `firstSeenAt`, projecting the task's `id` and `podName`):
 * `podwarden status` queries each shard newest first, and never scans. Both key attributes are
 * written once, when the task is first stored, so the index costs one write per task, not one per
 * record write; a record stored before the index existed appears in it at its next write.
 *
 * Every task item also carries `podRef` (POD#<cluster>#<namespace>#<podName> of the pod it
 * supervises now) and `podSince` (when it took that pod name), which put it in the pod index
 * (partition `podRef`, sort `podSince`, keys only): `findByPod` finds the task of a pod that is
 * already gone there, the task that took the name last first. The entry changes only when the
 * task's pod name does (a new try), so it costs no write of its own on an ordinary record write,
 * and it leaves with the task item. A task that moves to a new try's pod
 * leaves an "old pod" item for the name it gave up, with the retention expiry, so late events
 * about that pod still find the task.
 */
export const PARTITION_KEY = 'PK';
export const SORT_KEY = 'SK';
export const DUE_INDEX_NAME = 'due-timers';
export const DUE_SHARD_ATTRIBUTE = 'dueShard';
export const DUE_AT_ATTRIBUTE = 'dueAt';
export const LIST_INDEX_NAME = 'tasks-by-first-seen';
export const LIST_SHARD_ATTRIBUTE = 'listShard';
export const LIST_SORT_ATTRIBUTE = 'firstSeenAt';
export const POD_INDEX_NAME = 'tasks-by-pod';
export const POD_REF_ATTRIBUTE = 'podRef';
export const POD_SINCE_ATTRIBUTE = 'podSince';
/** Non-key attributes the listing index carries: enough to filter by cluster, namespace, task or pod. */
export const LIST_PROJECTED_ATTRIBUTES: readonly string[] = ['id', 'podName'];
/**
 * Two lanes in the due-timer index, told apart by the sort key alone: a deadline (a back-off, a
 * re-check, a grace, an owed audit) is stored at its time; a due time that is only the periodic
 * resync is stored this far ahead of it (the record reads back its real `dueAt`). One query per
 * shard, `dueAt <= now + offset` filtered to the two due ranges, then answers every deadline before
 * any resync, so a backlog of resyncs never holds up a re-create; and the keys alone say which lane
 * an entry is in, so a timer can pass over resyncs without reading their records. 10^15 ms is about
 * 31,700 years: no real time reaches it, and it is still an exact integer in a double.
 */
export const RESYNC_LANE_OFFSET_MS = 1e15;
/** Epoch seconds; DynamoDB's TTL deletes the item some time after it passes. */
export const TTL_ATTRIBUTE = 'expiresAt';

/**
 * Shards of the due-timer index. Raising the count later is safe (records keep their old shard,
 * which is still queried); lowering it would hide records in the dropped shards until rewritten.
 */
export const DEFAULT_DUE_SHARDS = 8;
export const MAX_DUE_SHARDS = 64;

/** The partition of the resync-pass notes: when a reaper pass last re-read every task of a cluster. */
export const RESYNC_PASSES_PARTITION_KEY = 'RESYNC#PASSES';
export const TASK_SORT_KEY = 'TASK';
export const POD_SORT_KEY = 'POD';
export const SEEN_SORT_KEY = 'SEEN';
export const AUDIT_SORT_PREFIX = 'AUDIT#';

/** DynamoDB's limit for a partition key value. */
const MAX_PARTITION_KEY_BYTES = 2048;
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;

/** Input the store cannot turn into a key or an item without losing or mixing up data. */
export class StoreInputError extends Error {
  override name = 'StoreInputError';
}

export function assertTableName(tableName: unknown): asserts tableName is string {
  if (typeof tableName !== 'string' || !TABLE_NAME.test(tableName)) {
    throw new StoreInputError(
      `tableName must be 3-255 characters of A-Z a-z 0-9 _ . -, got ${JSON.stringify(tableName)}`,
    );
  }
}

/** Key parts are joined with `#`, so a part containing `#` could alias another task's key. */
function keyPart(what: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw new StoreInputError(`${what} must be a non-empty string, got ${JSON.stringify(value)}`);
  }
  if (value.includes('#'))
    throw new StoreInputError(`${what} must not contain '#', got ${JSON.stringify(value)}`);
  return value;
}

function partitionKey(what: string, key: string): string {
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_PARTITION_KEY_BYTES) {
    throw new StoreInputError(
      `${what} makes a ${bytes}-byte key, over DynamoDB's ${MAX_PARTITION_KEY_BYTES}`,
    );
  }
  return key;
}

export function taskPartitionKey(id: TaskId): string {
  if (typeof id !== 'object' || id === null)
    throw new StoreInputError(`task id must be an object, got ${id}`);
  if (typeof id.key !== 'string' || id.key === '') {
    throw new StoreInputError(`task id key must be a non-empty string, got ${JSON.stringify(id.key)}`);
  }
  // The key is last, so it may contain '#' without making two ids share a partition key.
  return partitionKey(
    `task id ${id.cluster}/${id.namespace}/${id.key}`,
    `TASK#${keyPart('cluster', id.cluster)}#${keyPart('namespace', id.namespace)}#${id.key}`,
  );
}

export function podPartitionKey(cluster: string, namespace: string, podName: string): string {
  return partitionKey(
    `pod ${cluster}/${namespace}/${podName}`,
    `POD#${keyPart('cluster', cluster)}#${keyPart('namespace', namespace)}#${keyPart('pod name', podName)}`,
  );
}

export function seenPartitionKey(eventId: string): string {
  if (typeof eventId !== 'string' || eventId === '') {
    throw new StoreInputError(`event id must be a non-empty string, got ${JSON.stringify(eventId)}`);
  }
  return partitionKey('event id', `SEEN#${eventId}`);
}

/**
 * Zero-padded so that the string order of sort keys is the time order; `sequence` keeps the order
 * of entries written in one call, `unique` keeps entries of concurrent writers apart.
 */
export function auditSortKey(at: number, sequence: number, unique: string): string {
  return `${AUDIT_SORT_PREFIX}${String(at).padStart(15, '0')}#${String(sequence).padStart(4, '0')}#${unique}`;
}

/** A stable shard for a task: the same partition key always lands in the same `DUE#<n>`. */
export function dueShardOf(taskKey: string, shards: number): string {
  const hash = createHash('sha256').update(taskKey).digest().readUInt32BE(0);
  return dueShardName(hash % shards);
}

export function dueShardName(shard: number): string {
  return `DUE#${shard}`;
}

/** The listing shard of a task: stable per task, like its due shard, but in a key space of its own. */
export function listShardOf(taskKey: string, shards: number): string {
  const hash = createHash('sha256').update(taskKey).digest().readUInt32BE(0);
  return listShardName(hash % shards);
}

export function listShardName(shard: number): string {
  return `LIST#${shard}`;
}

export function tableDefinition(tableName: string): CreateTableCommandInput {
  assertTableName(tableName);
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: PARTITION_KEY, AttributeType: 'S' },
      { AttributeName: SORT_KEY, AttributeType: 'S' },
      { AttributeName: DUE_SHARD_ATTRIBUTE, AttributeType: 'S' },
      { AttributeName: DUE_AT_ATTRIBUTE, AttributeType: 'N' },
      { AttributeName: LIST_SHARD_ATTRIBUTE, AttributeType: 'S' },
      { AttributeName: LIST_SORT_ATTRIBUTE, AttributeType: 'N' },
      { AttributeName: POD_REF_ATTRIBUTE, AttributeType: 'S' },
      { AttributeName: POD_SINCE_ATTRIBUTE, AttributeType: 'N' },
    ],
    KeySchema: [
      { AttributeName: PARTITION_KEY, KeyType: 'HASH' },
      { AttributeName: SORT_KEY, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: DUE_INDEX_NAME,
        KeySchema: [
          { AttributeName: DUE_SHARD_ATTRIBUTE, KeyType: 'HASH' },
          { AttributeName: DUE_AT_ATTRIBUTE, KeyType: 'RANGE' },
        ],
        // Keys only: the timer re-reads each due task with a consistent read anyway (the index is
        // eventually consistent), so copying whole records, captured specs included, into the
        // index would double their write cost for nothing.
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
      {
        IndexName: LIST_INDEX_NAME,
        KeySchema: [
          { AttributeName: LIST_SHARD_ATTRIBUTE, KeyType: 'HASH' },
          { AttributeName: LIST_SORT_ATTRIBUTE, KeyType: 'RANGE' },
        ],
        // `id` never changes and `podName` only with a new try, so the index is rarely rewritten;
        // `status` filters on them in the query and re-reads the matching records by key.
        Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...LIST_PROJECTED_ATTRIBUTES] },
      },
      {
        IndexName: POD_INDEX_NAME,
        KeySchema: [
          { AttributeName: POD_REF_ATTRIBUTE, KeyType: 'HASH' },
          { AttributeName: POD_SINCE_ATTRIBUTE, KeyType: 'RANGE' },
        ],
        // Keys only: findByPod re-reads the task with a consistent read (the index is eventually
        // consistent), and an ordinary record write, which keeps the pod, leaves the index alone.
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
    ],
  };
}

export function timeToLiveDefinition(tableName: string): UpdateTimeToLiveCommandInput {
  assertTableName(tableName);
  return {
    TableName: tableName,
    TimeToLiveSpecification: { Enabled: true, AttributeName: TTL_ATTRIBUTE },
  };
}
