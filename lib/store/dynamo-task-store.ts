import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { dueIsDeadline } from '../core/engine.ts';
import { DEFAULT_POLICY } from '../core/policy.ts';
import {
  type AuditEntry,
  type DueEntry,
  type DueOptions,
  type TaskStore,
  VersionConflictError,
} from '../core/ports.ts';
import type { TaskId, TaskRecord, TaskState } from '../core/task.ts';
import {
  AUDIT_SORT_PREFIX,
  assertTableName,
  DEFAULT_DUE_SHARDS,
  DUE_AT_ATTRIBUTE,
  DUE_INDEX_NAME,
  DUE_SHARD_ATTRIBUTE,
  dueShardName,
  LIST_INDEX_NAME,
  LIST_SHARD_ATTRIBUTE,
  LIST_SORT_ATTRIBUTE,
  listShardName,
  MAX_DUE_SHARDS,
  PARTITION_KEY,
  POD_INDEX_NAME,
  POD_REF_ATTRIBUTE,
  POD_SINCE_ATTRIBUTE,
  podPartitionKey,
  RESYNC_LANE_OFFSET_MS,
  RESYNC_PASSES_PARTITION_KEY,
  SEEN_SORT_KEY,
  SORT_KEY,
  StoreInputError,
  seenPartitionKey,
  TTL_ATTRIBUTE,
  taskPartitionKey,
} from './schema.ts';
import {
  epochSeconds,
  fromAuditItem,
  fromTaskItem,
  type Item,
  podItemKey,
  TASK_KEY_ATTRIBUTE,
  taskItemKey,
  toAuditItem,
  toOldPodItem,
  toTaskItem,
  updateOfItem,
} from './task-item.ts';

export interface DynamoTaskStoreOptions {
  /**
   * The store takes the SDK's logger middleware off this client: it filters a deep copy of every
   * answer (whole records, here) for a logger even when the logger is the default that writes
   * nothing, which was a tenth of a reaper pass's CPU. Podwarden logs its own requests' failures.
   */
  client: DynamoDBClient;
  tableName: string;
  /** How long finished tasks, their pod pointers and audit lines are kept; default the policy's. */
  retentionMs?: number;
  /** Shards of the due-timer index; see DEFAULT_DUE_SHARDS before changing it on a live table. */
  shards?: number;
}

export const DEFAULT_AUDIT_LIMIT = 100;
export const DEFAULT_LIST_LIMIT = 50;
const MAX_LIST_LIMIT = 10_000;
/** Index entries read per Query page while listing; each page's records are re-read in one batch. */
const LIST_PAGE_SIZE = 100;

/** What `listTasks` selects; every field narrows the answer, none widens it. */
export interface ListTasksQuery {
  cluster?: string;
  namespace?: string;
  /** Only tasks first seen at or after this time (epoch ms). */
  since?: number;
  states?: readonly TaskState[];
  /** A task key, or the name of a pod a task supervises now: finds a task without its namespace. */
  keyOrPod?: string;
  /** At most this many tasks (default 50). */
  limit?: number;
}

export interface TaskListing {
  /** Newest first (by when Podwarden first saw the task). */
  tasks: TaskRecord[];
  /** More tasks matched than `limit`: the answer is cut. */
  cut: boolean;
}
interface AuditCall {
  requests: WriteRequest[];
  /** The task, for an error message. */
  what: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** DynamoDB's limits per BatchWriteItem and BatchGetItem call. */
const BATCH_WRITE_MAX = 25;
const BATCH_GET_MAX = 100;
/** BatchGetItem calls in flight at once for `getMany`: 400 records, without a burst that throttles. */
const BATCH_GET_CONCURRENCY = 4;
/** Unprocessed batch items are what DynamoDB returns instead of a throttling error; retry them. */
const BATCH_RETRIES = 8;
const BATCH_BACKOFF_BASE_MS = 50;
const BATCH_BACKOFF_CAP_MS = 2_000;
/** Tasks holding one pod name that findByPod reads at most: more than one is already rare. */
const POD_HOLDERS_READ = 10;
/** Index entries read per due-timer query page at the least. */
const MIN_DUE_PAGE = 100;

/**
 * The TaskStore on one DynamoDB table (layout in schema.ts).
 *
 * Every record write is conditional on the version that was read; losing the race throws
 * VersionConflictError and the caller re-reads, so nothing is ever overwritten blindly. Errors
 * other than a failed condition propagate unchanged (the SDK has already retried throttling), and
 * since every write is a single PutItem or one transaction, a failed write leaves the table as it
 * was.
 */
export class DynamoTaskStore implements TaskStore {
  readonly tableName: string;
  readonly retentionMs: number;
  readonly shards: number;
  readonly #client: DynamoDBClient;
  /** appendAudit calls of this turn of the event loop, sent together at its end. */
  #auditCalls: AuditCall[] = [];

  constructor(options: DynamoTaskStoreOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new StoreInputError('DynamoTaskStore needs options { client, tableName, retentionMs?, shards? }');
    }
    const {
      client,
      tableName,
      retentionMs = DEFAULT_POLICY.retentionMs,
      shards = DEFAULT_DUE_SHARDS,
    } = options;
    if (typeof client !== 'object' || client === null || typeof client.send !== 'function') {
      throw new StoreInputError('DynamoTaskStore options.client must be a DynamoDBClient');
    }
    try {
      assertTableName(tableName);
    } catch (error) {
      throw new StoreInputError(`DynamoTaskStore options.${(error as Error).message}`);
    }
    if (!Number.isSafeInteger(retentionMs) || retentionMs <= 0) {
      throw new StoreInputError(
        `DynamoTaskStore options.retentionMs must be a positive whole number of milliseconds, got ${retentionMs}`,
      );
    }
    if (!Number.isSafeInteger(shards) || shards < 1 || shards > MAX_DUE_SHARDS) {
      throw new StoreInputError(
        `DynamoTaskStore options.shards must be a whole number from 1 to ${MAX_DUE_SHARDS}, got ${shards}`,
      );
    }
    client.middlewareStack.remove('loggerMiddleware');
    this.#client = client;
    this.tableName = tableName;
    this.retentionMs = retentionMs;
    this.shards = shards;
  }

  async get(id: TaskId): Promise<TaskRecord | undefined> {
    const item = await this.#readTaskItem(taskPartitionKey(id));
    return item ? fromTaskItem(item) : undefined;
  }

  async getMany(ids: TaskId[]): Promise<TaskRecord[]> {
    if (!Array.isArray(ids)) throw new StoreInputError('getMany: ids must be an array');
    // BatchGetItem refuses a request that names a key twice.
    const keys = [...new Set(ids.map((id) => taskPartitionKey(id)))];
    const chunks: string[][] = [];
    for (let start = 0; start < keys.length; start += BATCH_GET_MAX)
      chunks.push(keys.slice(start, start + BATCH_GET_MAX));
    const records: TaskRecord[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(BATCH_GET_CONCURRENCY, chunks.length) }, async () => {
        while (next < chunks.length) records.push(...(await this.#batchGetTasks(chunks[next++]!)));
      }),
    );
    return records;
  }

  /**
   * Writes the task item: one write, conditional on the version that was read, whatever changed.
   *
   * The item is its own entry in the pod index that `findByPod` reads (`podRef`, `podSince`), so
   * no pointer item is written beside it, and the entry changes only when the pod name does.
   * When a task moves to a new try's pod, the name it gives up is kept as an old-pod item with the
   * retention expiry, so that late events about the old pod still find the task. It is written
   * first: a conflict after it leaves only a true statement (the task did own that pod).
   *
   * Given `previous` (the record as read at `record.version`), the write is an UpdateItem of the
   * attributes that differ from it instead of a PutItem of the whole item: the captured spec,
   * which never changes after its capture, is sent once, with the task's first write.
   */
  async put(record: TaskRecord, now: number, previous?: TaskRecord): Promise<TaskRecord> {
    const options = { shards: this.shards, retentionMs: this.retentionMs, now };
    const prepared = toTaskItem(record, options);
    const stored: TaskRecord = { ...record, version: record.version + 1 };
    const taskKey = prepared.key[PARTITION_KEY]!.S!;
    const podSince = { N: String(now) };
    if (record.version === 0) {
      prepared.item[POD_SINCE_ATTRIBUTE] = podSince;
      try {
        await this.#client.send(
          new PutItemCommand({
            TableName: this.tableName,
            Item: prepared.item,
            ConditionExpression: 'attribute_not_exists(#pk)',
            ExpressionAttributeNames: { '#pk': PARTITION_KEY },
          }),
        );
      } catch (error) {
        if (isConditionalCheckFailure(error)) throw new VersionConflictError(record.id, record.version);
        throw error;
      }
      return stored;
    }
    const condition = {
      ConditionExpression: '#version = :expected',
      ExpressionAttributeNames: { '#version': 'version' },
      ExpressionAttributeValues: { ':expected': { N: String(record.version) } },
    };
    try {
      // The stored item is the one `previous` was read from only if their versions match.
      if (previous !== undefined && previous.version === record.version) {
        // toTaskItem writes the version after the write; the stored item carries the one before it.
        const storedItem = toTaskItem(previous, {
          ...options,
          now: previous.endedAt ?? now,
          checkSize: false,
        }).item;
        storedItem.version = { N: String(previous.version) };
        if (previous.podName !== record.podName) {
          prepared.item[POD_SINCE_ATTRIBUTE] = podSince;
          await this.#keepOldPod(record.id, previous.podName, taskKey, now);
        }
        const update = updateOfItem(storedItem, prepared.item);
        await this.#client.send(
          new UpdateItemCommand({
            TableName: this.tableName,
            Key: prepared.key,
            UpdateExpression: update.expression,
            ...condition,
            ExpressionAttributeNames: { ...condition.ExpressionAttributeNames, ...update.names },
            ExpressionAttributeValues: { ...condition.ExpressionAttributeValues, ...update.values },
          }),
        );
        return stored;
      }
      // Written whole, without the record as read: the pod's name is re-stamped, and the item it
      // replaced says whether the task gave a pod name up.
      prepared.item[POD_SINCE_ATTRIBUTE] = podSince;
      const { Attributes: replaced } = await this.#client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: prepared.item,
          ...condition,
          ReturnValues: 'ALL_OLD',
        }),
      );
      const oldPodName = replaced?.podName?.S;
      if (oldPodName !== undefined && oldPodName !== record.podName)
        await this.#keepOldPod(record.id, oldPodName, taskKey, now);
      return stored;
    } catch (error) {
      if (isConditionalCheckFailure(error)) throw new VersionConflictError(record.id, record.version);
      throw error;
    }
  }

  async #keepOldPod(id: TaskId, podName: string, taskKey: string, now: number): Promise<void> {
    await this.#client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: toOldPodItem(id, podName, taskKey, epochSeconds(now + this.retentionMs), now),
      }),
    );
  }

  async due(now: number, limit: number, options: DueOptions = {}): Promise<TaskRecord[]> {
    if (!Number.isFinite(now)) throw new StoreInputError(`due: now must be epoch milliseconds, got ${now}`);
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new StoreInputError(`due: limit must be a positive whole number, got ${limit}`);
    }
    const shardNames = Array.from({ length: this.shards }, (_, shard) => dueShardName(shard));
    const perShard = await Promise.all(
      shardNames.map((shard) => this.#dueKeys(shard, now, limit, options.skip)),
    );
    // By the index's sort key: every deadline (stored at its time) before any resync (stored past
    // RESYNC_LANE_OFFSET_MS).
    const candidates = perShard
      .flat()
      .sort((a, b) => a.sortKey - b.sortKey || compareStrings(a.taskKey, b.taskKey))
      .slice(0, limit);
    // The index is eventually consistent: re-read each candidate and keep it only if it is still due.
    const records = await this.#batchGetTasks(candidates.map((candidate) => candidate.taskKey));
    const lane = (record: TaskRecord) => (dueIsDeadline(record) ? 0 : 1);
    return records
      .filter((record) => record.dueAt !== undefined && record.dueAt <= now)
      .sort(
        (a, b) =>
          lane(a) - lane(b) ||
          a.dueAt! - b.dueAt! ||
          compareStrings(taskPartitionKey(a.id), taskPartitionKey(b.id)),
      );
  }

  async #dueKeys(
    shard: string,
    now: number,
    limit: number,
    skip: DueOptions['skip'],
  ): Promise<Array<{ taskKey: string; sortKey: number }>> {
    const keys: Array<{ taskKey: string; sortKey: number }> = [];
    // Both lanes in one query: deadlines up to now, resyncs up to now past the offset. The
    // deadlines not due yet lie between the two and are dropped here (a filter expression may not
    // name a key attribute); they are index keys only, a few bytes each.
    await this.#readDueIndex(
      shard,
      { condition: '#dueAt <= :bound', bound: now + RESYNC_LANE_OFFSET_MS },
      {
        // Not fewer than a page's worth: deadlines not due yet and skipped entries are dropped.
        limit: () => Math.max(limit - keys.length, MIN_DUE_PAGE),
        more: () => keys.length < limit,
      },
      (taskKey, sortKey) => {
        if (sortKey > now && sortKey < RESYNC_LANE_OFFSET_MS) return;
        if (skip?.(dueEntryOf(taskKey, sortKey))) return;
        keys.push({ taskKey, sortKey });
      },
    );
    return keys;
  }

  async resyncEntries(cluster: string): Promise<Array<{ id: TaskId; dueAt: number }>> {
    const prefix = `TASK#${cluster}#`;
    const shardNames = Array.from({ length: this.shards }, (_, shard) => dueShardName(shard));
    const perShard = await Promise.all(
      shardNames.map(async (shard) => {
        const entries: Array<{ id: TaskId; dueAt: number }> = [];
        await this.#readDueIndex(
          shard,
          { condition: '#dueAt >= :bound', bound: RESYNC_LANE_OFFSET_MS },
          {},
          (taskKey, sortKey) => {
            if (!taskKey.startsWith(prefix)) return;
            const rest = taskKey.slice(prefix.length);
            const cut = rest.indexOf('#');
            entries.push({
              id: { cluster, namespace: rest.slice(0, cut), key: rest.slice(cut + 1) },
              dueAt: sortKey - RESYNC_LANE_OFFSET_MS,
            });
          },
        );
        return entries;
      }),
    );
    return perShard.flat();
  }

  /**
   * One shard of the due index (keys only), oldest first, page by page: `pages.limit` gives each
   * page's Limit (none without it), `pages.more` whether to read on after a page (yes without it).
   */
  async #readDueIndex(
    shard: string,
    range: { condition: string; bound: number },
    pages: { limit?: () => number; more?: () => boolean },
    onEntry: (taskKey: string, sortKey: number) => void,
  ): Promise<void> {
    let startKey: Item | undefined;
    do {
      const page = await this.#client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: DUE_INDEX_NAME,
          KeyConditionExpression: `#shard = :shard AND ${range.condition}`,
          ExpressionAttributeNames: { '#shard': DUE_SHARD_ATTRIBUTE, '#dueAt': DUE_AT_ATTRIBUTE },
          ExpressionAttributeValues: { ':shard': { S: shard }, ':bound': { N: String(range.bound) } },
          ScanIndexForward: true,
          ...(pages.limit ? { Limit: pages.limit() } : {}),
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? [])
        onEntry(item[PARTITION_KEY]!.S!, Number(item[DUE_AT_ATTRIBUTE]!.N));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined && (pages.more?.() ?? true));
  }

  async noteResyncPass(cluster: string, startedAt: number): Promise<void> {
    if (!Number.isSafeInteger(startedAt) || startedAt < 0)
      throw new StoreInputError(`noteResyncPass: startedAt must be epoch milliseconds, got ${startedAt}`);
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: {
            [PARTITION_KEY]: { S: RESYNC_PASSES_PARTITION_KEY },
            [SORT_KEY]: { S: keyPartOrThrow('cluster', cluster) },
            startedAt: { N: String(startedAt) },
          },
          // Passes may overlap: a later note of an earlier pass must not move the mark back.
          ConditionExpression: 'attribute_not_exists(#startedAt) OR #startedAt < :startedAt',
          ExpressionAttributeNames: { '#startedAt': 'startedAt' },
          ExpressionAttributeValues: { ':startedAt': { N: String(startedAt) } },
        }),
      );
    } catch (error) {
      if (!isConditionalCheckFailure(error)) throw error;
    }
  }

  async resyncPasses(): Promise<Map<string, number>> {
    const passes = new Map<string, number>();
    let startKey: Item | undefined;
    do {
      const page = await this.#client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: '#pk = :pk',
          ExpressionAttributeNames: { '#pk': PARTITION_KEY },
          ExpressionAttributeValues: { ':pk': { S: RESYNC_PASSES_PARTITION_KEY } },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) passes.set(item[SORT_KEY]!.S!, Number(item.startedAt!.N));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return passes;
  }

  async #batchGetTasks(taskKeys: string[]): Promise<TaskRecord[]> {
    const records: TaskRecord[] = [];
    for (let start = 0; start < taskKeys.length; start += BATCH_GET_MAX) {
      let pending: Item[] = taskKeys.slice(start, start + BATCH_GET_MAX).map(taskItemKey);
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > BATCH_RETRIES) {
          throw new Error(
            `BatchGetItem left ${pending.length} keys unprocessed after ${BATCH_RETRIES} retries`,
          );
        }
        if (attempt > 0) await backoff(attempt);
        const response = await this.#client.send(
          new BatchGetItemCommand({
            RequestItems: { [this.tableName]: { Keys: pending, ConsistentRead: true } },
          }),
        );
        for (const item of response.Responses?.[this.tableName] ?? []) records.push(fromTaskItem(item));
        pending = response.UnprocessedKeys?.[this.tableName]?.Keys ?? [];
      }
    }
    return records;
  }

  /**
   * Tasks newest first, by the task-listing index: each shard is queried newest first (never a
   * scan), cluster, namespace, key and pod are filtered in the query on the projected `id` and
   * `podName`, and each page of matches is re-read by key with consistent reads (the index is
   * eventually consistent), where the state is filtered. Stops as soon as `limit` tasks are certain.
   */
  async listTasks(query: ListTasksQuery = {}): Promise<TaskListing> {
    const limit = query.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new StoreInputError(
        `listTasks: limit must be a whole number from 1 to ${MAX_LIST_LIMIT}, got ${limit}`,
      );
    }
    if (query.since !== undefined && !Number.isFinite(query.since)) {
      throw new StoreInputError(`listTasks: since must be epoch milliseconds, got ${query.since}`);
    }
    const shardNames = Array.from({ length: this.shards }, (_, shard) => listShardName(shard));
    // Each shard gives at most limit + 1 matches: one more than needed tells whether the answer is cut.
    const perShard = await Promise.all(shardNames.map((shard) => this.#listShard(shard, query, limit + 1)));
    const all = perShard
      .flat()
      .sort(
        (a, b) =>
          b.firstSeenAt - a.firstSeenAt || compareStrings(taskPartitionKey(a.id), taskPartitionKey(b.id)),
      );
    return { tasks: all.slice(0, limit), cut: all.length > limit };
  }

  async #listShard(shard: string, query: ListTasksQuery, wanted: number): Promise<TaskRecord[]> {
    const names: Record<string, string> = { '#shard': LIST_SHARD_ATTRIBUTE };
    const values: Item = { ':shard': { S: shard } };
    let keyCondition = '#shard = :shard';
    if (query.since !== undefined) {
      keyCondition += ' AND #seen >= :since';
      names['#seen'] = LIST_SORT_ATTRIBUTE;
      values[':since'] = { N: String(query.since) };
    }
    const filters: string[] = [];
    if (query.cluster !== undefined || query.namespace !== undefined || query.keyOrPod !== undefined)
      names['#id'] = 'id';
    if (query.cluster !== undefined) {
      names['#cluster'] = 'cluster';
      values[':cluster'] = { S: query.cluster };
      filters.push('#id.#cluster = :cluster');
    }
    if (query.namespace !== undefined) {
      names['#namespace'] = 'namespace';
      values[':namespace'] = { S: query.namespace };
      filters.push('#id.#namespace = :namespace');
    }
    if (query.keyOrPod !== undefined) {
      names['#key'] = 'key';
      names['#podName'] = 'podName';
      values[':keyOrPod'] = { S: query.keyOrPod };
      filters.push('(#id.#key = :keyOrPod OR #podName = :keyOrPod)');
    }
    const states = query.states && query.states.length > 0 ? new Set(query.states) : undefined;
    const found: TaskRecord[] = [];
    let startKey: Item | undefined;
    do {
      const page = await this.#client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: LIST_INDEX_NAME,
          KeyConditionExpression: keyCondition,
          ...(filters.length > 0 ? { FilterExpression: filters.join(' AND ') } : {}),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ScanIndexForward: false,
          // Unfiltered, every index entry is a task to show: read no more than needed.
          Limit:
            states || filters.length > 0 ? LIST_PAGE_SIZE : Math.min(LIST_PAGE_SIZE, wanted - found.length),
          ExclusiveStartKey: startKey,
        }),
      );
      const keys = (page.Items ?? []).map((item) => item[PARTITION_KEY]!.S!);
      const records = await this.#batchGetTasks(keys);
      // BatchGetItem answers in any order: put the page back in the index's order.
      const order = new Map(keys.map((key, index) => [key, index]));
      records.sort((a, b) => order.get(taskPartitionKey(a.id))! - order.get(taskPartitionKey(b.id))!);
      for (const record of records) {
        if (!states || states.has(record.state)) found.push(record);
        if (found.length >= wanted) return found;
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return found;
  }

  async findByPod(cluster: string, namespace: string, podName: string): Promise<TaskRecord | undefined> {
    const podRef = podPartitionKey(cluster, namespace, podName);
    const { Items: holders = [] } = await this.#client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: POD_INDEX_NAME,
        KeyConditionExpression: '#podRef = :podRef',
        ExpressionAttributeNames: { '#podRef': POD_REF_ATTRIBUTE },
        ExpressionAttributeValues: { ':podRef': { S: podRef } },
        ScanIndexForward: false,
        Limit: POD_HOLDERS_READ,
      }),
    );
    // The index is eventually consistent: only a holder that still has the pod on a consistent
    // read counts, the one that took the name last first.
    for (const holder of holders) {
      const item = await this.#readTaskItem(holder[PARTITION_KEY]!.S!);
      if (item?.[POD_REF_ATTRIBUTE]?.S === podRef) return fromTaskItem(item);
    }
    // A pod name its task gave up for a new try (or a pointer an earlier version wrote).
    const { Item: oldPod } = await this.#client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: podItemKey(cluster, namespace, podName),
        ConsistentRead: true,
      }),
    );
    const taskKey = oldPod?.[TASK_KEY_ATTRIBUTE]?.S;
    const item = taskKey === undefined ? undefined : await this.#readTaskItem(taskKey);
    return item ? fromTaskItem(item) : undefined;
  }

  async #readTaskItem(taskKey: string): Promise<Item | undefined> {
    const { Item: item } = await this.#client.send(
      new GetItemCommand({ TableName: this.tableName, Key: taskItemKey(taskKey), ConsistentRead: true }),
    );
    return item;
  }

  /**
   * Audit lines of concurrent reconciles (a reaper pass makes its deletes 16 at a time) share
   * BatchWriteItem requests: the calls made within one turn of the event loop are sent together, up
   * to 25 items a request, whole calls only, and each call resolves once the request that carries
   * its lines is done (or rejects with its failure). No call waits for others to come: a lone call
   * is sent as it was before, in the same turn's end.
   */
  async appendAudit(id: TaskId, entries: AuditEntry[]): Promise<void> {
    if (!Array.isArray(entries)) throw new StoreInputError('appendAudit: entries must be an array');
    const taskKey = taskPartitionKey(id);
    const unique = randomUUID();
    const requests: WriteRequest[] = entries.map((entry, sequence) => ({
      PutRequest: { Item: toAuditItem(taskKey, entry, sequence, unique, this.retentionMs) },
    }));
    const what = `${id.cluster}/${id.namespace}/${id.key}`;
    if (requests.length === 0) return;
    if (requests.length > BATCH_WRITE_MAX) {
      for (let start = 0; start < requests.length; start += BATCH_WRITE_MAX)
        await this.#writeAuditItems(requests.slice(start, start + BATCH_WRITE_MAX), what);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      this.#auditCalls.push({ requests, what, resolve, reject });
      if (this.#auditCalls.length === 1) setImmediate(() => this.#sendAuditCalls());
    });
  }

  #sendAuditCalls(): void {
    const calls = this.#auditCalls;
    this.#auditCalls = [];
    const send = (batch: AuditCall[]) =>
      this.#writeAuditItems(
        batch.flatMap((call) => call.requests),
        batch.map((call) => call.what).join(', '),
      ).then(
        () => {
          for (const call of batch) call.resolve();
        },
        (error: unknown) => {
          for (const call of batch) call.reject(error);
        },
      );
    let batch: AuditCall[] = [];
    let items = 0;
    for (const call of calls) {
      if (items + call.requests.length > BATCH_WRITE_MAX) {
        void send(batch);
        batch = [];
        items = 0;
      }
      batch.push(call);
      items += call.requests.length;
    }
    if (batch.length > 0) void send(batch);
  }

  async #writeAuditItems(requests: WriteRequest[], what: string): Promise<void> {
    let pending = requests;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > BATCH_RETRIES) {
        throw new Error(
          `BatchWriteItem left ${pending.length} audit items of ${what} unprocessed after ${BATCH_RETRIES} retries`,
        );
      }
      if (attempt > 0) await backoff(attempt);
      const response = await this.#client.send(
        new BatchWriteItemCommand({ RequestItems: { [this.tableName]: pending } }),
      );
      pending = response.UnprocessedItems?.[this.tableName] ?? [];
    }
  }

  /** Newest first. */
  async listAudit(id: TaskId, limit = DEFAULT_AUDIT_LIMIT): Promise<AuditEntry[]> {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new StoreInputError(`listAudit: limit must be a positive whole number, got ${limit}`);
    }
    const entries: AuditEntry[] = [];
    let startKey: Item | undefined;
    do {
      const page = await this.#client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
          ExpressionAttributeNames: { '#pk': PARTITION_KEY, '#sk': SORT_KEY },
          ExpressionAttributeValues: {
            ':pk': { S: taskPartitionKey(id) },
            ':prefix': { S: AUDIT_SORT_PREFIX },
          },
          ScanIndexForward: false,
          Limit: limit - entries.length,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) entries.push(fromAuditItem(item));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined && entries.length < limit);
    return entries;
  }

  async markSeen(eventId: string, now: number, ttlMs: number): Promise<boolean> {
    const key = seenPartitionKey(eventId);
    if (!Number.isFinite(now) || now < 0)
      throw new StoreInputError(`markSeen: now must be epoch milliseconds, got ${now}`);
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
      throw new StoreInputError(`markSeen: ttlMs must be a positive number of milliseconds, got ${ttlMs}`);
    }
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: {
            [PARTITION_KEY]: { S: key },
            [SORT_KEY]: { S: SEEN_SORT_KEY },
            [TTL_ATTRIBUTE]: { N: String(epochSeconds(now + ttlMs)) },
          },
          // TTL deletes expired items only eventually, so an expired one counts as not seen.
          ConditionExpression: 'attribute_not_exists(#pk) OR #expiresAt <= :nowSeconds',
          ExpressionAttributeNames: { '#pk': PARTITION_KEY, '#expiresAt': TTL_ATTRIBUTE },
          ExpressionAttributeValues: { ':nowSeconds': { N: String(Math.floor(now / 1000)) } },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailure(error)) return false;
      throw error;
    }
  }
}

/** What a due-index entry says by its keys alone: `TASK#<cluster>#<namespace>#<key>` and the sort key. */
function dueEntryOf(taskKey: string, sortKey: number): DueEntry {
  const [, cluster = '', namespace = ''] = taskKey.split('#', 3);
  const resync = sortKey >= RESYNC_LANE_OFFSET_MS;
  return { cluster, namespace, dueAt: resync ? sortKey - RESYNC_LANE_OFFSET_MS : sortKey, resync };
}

function keyPartOrThrow(what: string, value: string): string {
  if (typeof value !== 'string' || value === '' || value.includes('#'))
    throw new StoreInputError(`${what} must be a non-empty string without '#', got ${JSON.stringify(value)}`);
  return value;
}

function isConditionalCheckFailure(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === 'ConditionalCheckFailedException';
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function backoff(attempt: number): Promise<void> {
  const ceiling = Math.min(BATCH_BACKOFF_CAP_MS, BATCH_BACKOFF_BASE_MS * 2 ** (attempt - 1));
  return sleep(Math.random() * ceiling);
}
