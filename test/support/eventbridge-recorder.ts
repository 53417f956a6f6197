/**
 * A FAKE of Amazon EventBridge's PutEvents, for tests and benchmarks: no EventBridge engine runs
 * locally (unlike DynamoDB Local), so this loopback server speaks just enough of the real wire
 * protocol (AWS JSON 1.1, `X-Amz-Target: AWSEvents.PutEvents`) for the real AWS SDK to talk to it.
 * It records accepted entries, enforces EventBridge's documented limits (10 entries and 256 KB per
 * call), and can inject the failures the bridge must survive: per-entry errors in a 200 answer
 * (`FailedEntryCount` with an `ErrorCode` per entry) and whole-call throttling (400
 * `ThrottlingException`). It matches no rule and delivers nothing.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedEntry {
  Source?: string;
  DetailType?: string;
  Detail?: string;
  EventBusName?: string;
  /** As the SDK sends it: epoch seconds. */
  Time?: number;
  Resources?: string[];
  eventId: string;
  /** 1-based number of the PutEvents call that delivered it. */
  call: number;
}

/** The envelope EventBridge wraps around an entry when it delivers it to a rule's target. */
export interface TargetEvent {
  version: '0';
  id: string;
  'detail-type': string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: unknown;
}

export interface RecordedCall {
  call: number;
  entries: number;
  outcome: 'ok' | 'partial' | 'throttled' | 'invalid';
  failed: number;
  bytes: number;
}

export interface EntryFault {
  ErrorCode: string;
  ErrorMessage?: string;
}

/** Decides the fate of one entry: undefined accepts it. */
export type EntryFaultRule = (entry: RecordedEntry, indexInCall: number) => EntryFault | undefined;

export interface EventBridgeRecorder {
  /** Pass as the SDK's `endpoint`. */
  readonly endpoint: string;
  /** Accepted entries, in the order they were accepted. */
  readonly entries: RecordedEntry[];
  readonly calls: RecordedCall[];
  /** Accepted entries' details, parsed. */
  details(): Array<Record<string, unknown>>;
  /** Accepted entries as an EventBridge rule target receives them (the event envelope). */
  targetEvents(): TargetEvent[];
  /** The next `count` entries (across calls) fail with `errorCode`, the rest of their call succeeds. */
  failNextEntries(count: number, errorCode?: string): void;
  /** A standing rule applied to every entry not already failed by `failNextEntries`. */
  failEntriesWhere(rule: EntryFaultRule | undefined): void;
  /** The next `count` calls are refused whole with 400 ThrottlingException. */
  throttleNextCalls(count: number): void;
  close(): Promise<void>;
}

const MAX_ENTRIES = 10;
const MAX_BYTES = 256 * 1024;

export async function startEventBridgeRecorder(): Promise<EventBridgeRecorder> {
  const entries: RecordedEntry[] = [];
  const calls: RecordedCall[] = [];
  let failNext = 0;
  let failNextCode = 'InternalFailure';
  let rule: EntryFaultRule | undefined;
  let throttleNext = 0;

  const server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      sendError(res, 500, 'InternalException', error instanceof Error ? error.message : String(error));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const target = req.headers['x-amz-target'];
    if (req.method !== 'POST' || target !== 'AWSEvents.PutEvents') {
      sendError(
        res,
        400,
        'UnknownOperationException',
        `this fake only answers AWSEvents.PutEvents, not ${String(target)}`,
      );
      return;
    }
    const call = calls.length + 1;
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
      Entries?: Array<Omit<RecordedEntry, 'eventId' | 'call'>>;
    };
    const requested = body.Entries ?? [];
    const bytes = requested.reduce((sum, entry) => sum + entrySize(entry), 0);
    if (requested.length === 0 || requested.length > MAX_ENTRIES || bytes > MAX_BYTES) {
      calls.push({ call, entries: requested.length, outcome: 'invalid', failed: requested.length, bytes });
      sendError(
        res,
        400,
        'ValidationException',
        `PutEvents takes 1-${MAX_ENTRIES} entries of at most ${MAX_BYTES} bytes in total; got ${requested.length} entries, ${bytes} bytes`,
      );
      return;
    }
    if (throttleNext > 0) {
      throttleNext -= 1;
      calls.push({ call, entries: requested.length, outcome: 'throttled', failed: requested.length, bytes });
      sendError(res, 400, 'ThrottlingException', 'Rate exceeded');
      return;
    }
    let failed = 0;
    const results = requested.map((raw, index) => {
      const entry: RecordedEntry = { ...raw, eventId: randomUUID(), call };
      let fault: EntryFault | undefined;
      if (failNext > 0) {
        failNext -= 1;
        fault = { ErrorCode: failNextCode, ErrorMessage: 'injected failure' };
      } else {
        fault = rule?.(entry, index);
      }
      if (fault) {
        failed += 1;
        return { ErrorCode: fault.ErrorCode, ErrorMessage: fault.ErrorMessage ?? 'injected failure' };
      }
      entries.push(entry);
      return { EventId: entry.eventId };
    });
    calls.push({ call, entries: requested.length, outcome: failed === 0 ? 'ok' : 'partial', failed, bytes });
    const payload = JSON.stringify({ FailedEntryCount: failed, Entries: results });
    res
      .writeHead(200, { 'Content-Type': 'application/x-amz-json-1.1', 'x-amzn-RequestId': randomUUID() })
      .end(payload);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    entries,
    calls,
    details: () => entries.map((entry) => JSON.parse(entry.Detail ?? '{}') as Record<string, unknown>),
    targetEvents: () =>
      entries.map((entry) => ({
        version: '0',
        id: entry.eventId,
        'detail-type': entry.DetailType ?? '',
        source: entry.Source ?? '',
        account: '000000000000',
        time: new Date((entry.Time ?? 0) * 1000).toISOString(),
        region: 'local',
        resources: entry.Resources ?? [],
        detail: JSON.parse(entry.Detail ?? '{}') as unknown,
      })),
    failNextEntries(count, errorCode = 'InternalFailure') {
      failNext = count;
      failNextCode = errorCode;
    },
    failEntriesWhere(next) {
      rule = next;
    },
    throttleNextCalls(count) {
      throttleNext = count;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** EventBridge's documented entry size: Time (14 bytes), Source, DetailType, Detail, Resources. */
function entrySize(entry: Omit<RecordedEntry, 'eventId' | 'call'>): number {
  return (
    (entry.Time === undefined ? 0 : 14) +
    Buffer.byteLength(entry.Source ?? '') +
    Buffer.byteLength(entry.DetailType ?? '') +
    Buffer.byteLength(entry.Detail ?? '') +
    (entry.Resources ?? []).reduce((sum, resource) => sum + Buffer.byteLength(resource), 0)
  );
}

function sendError(res: ServerResponse, status: number, type: string, message: string): void {
  res
    .writeHead(status, {
      'Content-Type': 'application/x-amz-json-1.1',
      'x-amzn-ErrorType': type,
      'x-amzn-RequestId': randomUUID(),
    })
    .end(JSON.stringify({ __type: type, message }));
}
