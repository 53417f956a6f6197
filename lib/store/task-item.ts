import { gunzipSync, gzipSync } from 'node:zlib';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { dueIsDeadline } from '../core/engine.ts';
import { type AuditEntry, RecordTooLargeError } from '../core/ports.ts';
import { isTerminal, type TaskId, type TaskRecord } from '../core/task.ts';
import { fromAttribute, itemSizeBytes, toAttribute, toAttributeMap } from './attribute-codec.ts';
import {
  auditSortKey,
  DUE_AT_ATTRIBUTE,
  DUE_SHARD_ATTRIBUTE,
  dueShardOf,
  LIST_SHARD_ATTRIBUTE,
  listShardOf,
  PARTITION_KEY,
  POD_REF_ATTRIBUTE,
  POD_SINCE_ATTRIBUTE,
  POD_SORT_KEY,
  podPartitionKey,
  RESYNC_LANE_OFFSET_MS,
  SORT_KEY,
  StoreInputError,
  TASK_SORT_KEY,
  TTL_ATTRIBUTE,
  taskPartitionKey,
} from './schema.ts';

export type Item = Record<string, AttributeValue>;

/** Captured pod specs whose JSON is larger than this are stored gzip-compressed. */
export const CAPTURED_GZIP_THRESHOLD_BYTES = 8 * 1024;
/** DynamoDB refuses items over 400 KB; staying well below leaves room for what the estimate misses. */
export const MAX_ITEM_BYTES = 350 * 1024;

/**
 * On task items of earlier versions: which pod pointer item was last written for it. Read past,
 * and removed by the item's next write.
 */
const POD_INDEXED_ATTRIBUTE = 'podIndexed';
const CAPTURED_JSON_ATTRIBUTE = 'captured';
const CAPTURED_GZIP_ATTRIBUTE = 'capturedGz';
/** On an old-pod item: the partition key of the task that gave the pod name up. */
export const TASK_KEY_ATTRIBUTE = 'taskPK';

/** Attributes of a task item that are the table's bookkeeping, not fields of the record. */
const STORAGE_ATTRIBUTES = new Set([
  PARTITION_KEY,
  SORT_KEY,
  DUE_SHARD_ATTRIBUTE,
  LIST_SHARD_ATTRIBUTE,
  TTL_ATTRIBUTE,
  POD_INDEXED_ATTRIBUTE,
  POD_REF_ATTRIBUTE,
  POD_SINCE_ATTRIBUTE,
  CAPTURED_JSON_ATTRIBUTE,
  CAPTURED_GZIP_ATTRIBUTE,
]);

export interface TaskItemOptions {
  shards: number;
  retentionMs: number;
  now: number;
  /**
   * Whether to refuse an item over the size limit (default yes). The item of a record as it was
   * read or written needs no check: it is the stored one.
   */
  checkSize?: boolean;
}

export interface TaskItem {
  item: Item;
  key: Item;
}

export function taskItemKey(taskKey: string): Item {
  return { [PARTITION_KEY]: { S: taskKey }, [SORT_KEY]: { S: TASK_SORT_KEY } };
}

export function podItemKey(cluster: string, namespace: string, podName: string): Item {
  return {
    [PARTITION_KEY]: { S: podPartitionKey(cluster, namespace, podName) },
    [SORT_KEY]: { S: POD_SORT_KEY },
  };
}

export function epochSeconds(ms: number): number {
  return Math.ceil(ms / 1000);
}

/** The item for `record` as it will be stored: with version `record.version + 1`. */
export function toTaskItem(record: TaskRecord, options: TaskItemOptions): TaskItem {
  const taskKey = taskPartitionKey(record.id);
  const what = `task ${record.id.cluster}/${record.id.namespace}/${record.id.key}`;
  if (!Number.isSafeInteger(record.version) || record.version < 0) {
    throw new StoreInputError(`${what}: version must be a non-negative whole number, got ${record.version}`);
  }
  // Validates the pod name as a key part before anything is written.
  const podRef = podPartitionKey(record.id.cluster, record.id.namespace, record.podName);

  const { captured, ...fields } = record;
  const item: Item = taskItemKey(taskKey);
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (STORAGE_ATTRIBUTES.has(name)) {
      throw new StoreInputError(
        `${what}: record field ${name} collides with a storage attribute of the table`,
      );
    }
    item[name] = toAttribute(value, `record.${name}`);
  }
  item.version = { N: String(record.version + 1) };

  if (record.dueAt !== undefined) {
    item[DUE_SHARD_ATTRIBUTE] = { S: dueShardOf(taskKey, options.shards) };
    if (!dueIsDeadline(record)) item[DUE_AT_ATTRIBUTE] = { N: String(record.dueAt + RESYNC_LANE_OFFSET_MS) };
  }
  item[LIST_SHARD_ATTRIBUTE] = { S: listShardOf(taskKey, options.shards) };

  if (isTerminal(record.state)) {
    // A terminal record without endedAt still expires, counted from now, so nothing stays forever.
    const expiresAt = epochSeconds((record.endedAt ?? options.now) + options.retentionMs);
    item[TTL_ATTRIBUTE] = { N: String(expiresAt) };
  }

  const spec = captured === undefined ? undefined : capturedAttribute(captured);
  if (spec) item[spec.name] = spec.value;

  item[POD_REF_ATTRIBUTE] = { S: podRef };

  if (options.checkSize === false) return { item, key: taskItemKey(taskKey) };
  const size = itemSizeBytes(item);
  if (size > MAX_ITEM_BYTES) {
    const capturedBytes = spec?.jsonBytes ?? 0;
    const specSize =
      spec?.compressedBytes === undefined
        ? `captured pod spec ${capturedBytes} bytes`
        : `captured pod spec ${capturedBytes} bytes, ${spec.compressedBytes} gzip-compressed`;
    throw new RecordTooLargeError(
      `${what}: the item would take about ${size} bytes (${specSize}), over the store's limit of ${MAX_ITEM_BYTES}; nothing was stored`,
    );
  }
  return { item, key: taskItemKey(taskKey) };
}

interface CapturedAttribute {
  name: typeof CAPTURED_JSON_ATTRIBUTE | typeof CAPTURED_GZIP_ATTRIBUTE;
  value: AttributeValue;
  jsonBytes: number;
  compressedBytes?: number;
}

/**
 * Encoded captured specs, by the spec object. A spec is never changed in place, only replaced (the
 * engine shares it between a record and the next), so a task's every write after the first finds
 * its spec already encoded, and the write's diff (`sameAttribute`) compares it by identity.
 */
const encodedSpecs = new WeakMap<object, CapturedAttribute>();

function capturedAttribute(captured: NonNullable<TaskRecord['captured']>): CapturedAttribute {
  const known = encodedSpecs.get(captured);
  if (known) return known;
  // JSON text, not a DynamoDB map: it reads back byte for byte (maps do not keep key order).
  const json = JSON.stringify(captured);
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  let encoded: CapturedAttribute;
  if (jsonBytes > CAPTURED_GZIP_THRESHOLD_BYTES) {
    const compressed = gzipSync(json);
    encoded = {
      name: CAPTURED_GZIP_ATTRIBUTE,
      value: { B: compressed },
      jsonBytes,
      compressedBytes: compressed.byteLength,
    };
  } else encoded = { name: CAPTURED_JSON_ATTRIBUTE, value: { S: json }, jsonBytes };
  encodedSpecs.set(captured, encoded);
  return encoded;
}

export interface UpdateOfItem {
  expression: string;
  names: Record<string, string>;
  values: Item;
}

/**
 * The UpdateItem that turns the stored item `before` into `after`: SET for every attribute that is
 * new or differs, REMOVE for every attribute `after` no longer has; the key is left alone.
 */
export function updateOfItem(before: Item, after: Item): UpdateOfItem {
  const names: Record<string, string> = {};
  const values: Item = {};
  const set: string[] = [];
  const remove: string[] = [];
  let n = 0;
  for (const [name, value] of Object.entries(after)) {
    if (name === PARTITION_KEY || name === SORT_KEY || sameAttribute(before[name], value)) continue;
    names[`#u${n}`] = name;
    values[`:u${n}`] = value;
    set.push(`#u${n} = :u${n}`);
    n++;
  }
  for (const name of Object.keys(before)) {
    if (name === PARTITION_KEY || name === SORT_KEY || name in after) continue;
    names[`#u${n}`] = name;
    remove.push(`#u${n}`);
    n++;
  }
  const expression = [
    set.length > 0 ? `SET ${set.join(', ')}` : '',
    remove.length > 0 ? `REMOVE ${remove.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  return { expression, names, values };
}

function sameAttribute(a: AttributeValue | undefined, b: AttributeValue): boolean {
  if (a === undefined) return false;
  if (a === b) return true;
  if (a.B !== undefined || b.B !== undefined)
    return a.B !== undefined && b.B !== undefined && Buffer.from(a.B).equals(Buffer.from(b.B));
  return JSON.stringify(a) === JSON.stringify(b);
}

export function fromTaskItem(item: Item): TaskRecord {
  const fields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(item)) {
    if (!STORAGE_ATTRIBUTES.has(name)) fields[name] = fromAttribute(value, name);
  }
  if (typeof fields.dueAt === 'number' && fields.dueAt >= RESYNC_LANE_OFFSET_MS)
    fields.dueAt -= RESYNC_LANE_OFFSET_MS;
  const json = item[CAPTURED_JSON_ATTRIBUTE]?.S;
  const compressed = item[CAPTURED_GZIP_ATTRIBUTE]?.B;
  if (json !== undefined) fields.captured = JSON.parse(json);
  else if (compressed !== undefined) fields.captured = JSON.parse(gunzipSync(compressed).toString('utf8'));
  return fields as unknown as TaskRecord;
}

/** The pod name a task gave up for a new try's pod, kept for late events about it until it expires. */
export function toOldPodItem(
  id: TaskId,
  podName: string,
  taskKey: string,
  expiresAt: number,
  now: number,
): Item {
  return {
    ...podItemKey(id.cluster, id.namespace, podName),
    [TASK_KEY_ATTRIBUTE]: { S: taskKey },
    since: { N: String(now) },
    [TTL_ATTRIBUTE]: { N: String(expiresAt) },
  };
}

export function toAuditItem(
  taskKey: string,
  entry: AuditEntry,
  sequence: number,
  unique: string,
  retentionMs: number,
): Item {
  if (!Number.isSafeInteger(entry.at) || entry.at < 0) {
    throw new StoreInputError(`audit entry at must be epoch milliseconds, got ${entry.at}`);
  }
  return {
    [PARTITION_KEY]: { S: taskKey },
    [SORT_KEY]: { S: auditSortKey(entry.at, sequence, unique) },
    ...toAttributeMap(entry as unknown as Record<string, unknown>, 'audit'),
    // Audit lines are written while the task may still run, when its own expiry is not known yet;
    // each line is kept for the retention period from when it happened.
    [TTL_ATTRIBUTE]: { N: String(epochSeconds(entry.at + retentionMs)) },
  };
}

export function fromAuditItem(item: Item): AuditEntry {
  const fields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(item)) {
    if (name !== PARTITION_KEY && name !== SORT_KEY && name !== TTL_ATTRIBUTE) {
      fields[name] = fromAttribute(value, name);
    }
  }
  return fields as unknown as AuditEntry;
}
