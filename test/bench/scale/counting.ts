/**
 * Call counters for the scale bench: a wrapper that counts every call made through a port (Cluster,
 * TaskStore), and SDK middleware that counts DynamoDB requests by command and the items they write.
 * They only count; every call still reaches the real control plane and DynamoDB Local.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

export class Counts {
  readonly #counts = new Map<string, number>();
  add(name: string, value = 1): void {
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + value);
  }
  get(name: string): number {
    return this.#counts.get(name) ?? 0;
  }
  /** Names starting with `prefix`, largest first. */
  entries(prefix = ''): Array<[string, number]> {
    return [...this.#counts].filter(([name]) => name.startsWith(prefix)).sort((a, b) => b[1] - a[1]);
  }
  toJSON(): Record<string, number> {
    return Object.fromEntries(this.#counts);
  }
}

/** The same object, with every method call counted as `<prefix>.<method>`. */
export function countingPort<T extends object>(inner: T, counts: Counts, prefix: string): T {
  return new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      return (...args: unknown[]) => {
        counts.add(`${prefix}.${property}`);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

type Written = { PK?: { S?: string } } | undefined;

/** The kind of item by its partition key: `task`, `old-pod`, `seen`, `audit` (see schema.ts). */
function kindOf(key: Written, sortKey?: string): string {
  const pk = key?.PK?.S ?? '';
  if (pk.startsWith('POD#')) return 'old-pod';
  if (pk.startsWith('SEEN#')) return 'seen';
  if (pk.startsWith('TASK#')) return sortKey?.startsWith('AUDIT#') ? 'audit' : 'task';
  return 'other';
}

/** The items one request writes, by kind, as DynamoDB bills them (each put, update or delete). */
function itemsWritten(command: string, input: Record<string, unknown>): string[] {
  const item = (request: Record<string, unknown> | undefined): string[] => {
    if (!request) return [];
    const written = (request.Item ?? request.Key) as Written & { SK?: { S?: string } };
    return [kindOf(written, written?.SK?.S)];
  };
  switch (command) {
    case 'PutItemCommand':
    case 'UpdateItemCommand':
    case 'DeleteItemCommand':
      return item(input);
    case 'TransactWriteItemsCommand':
      return ((input.TransactItems as Array<Record<string, Record<string, unknown>>>) ?? []).flatMap(
        (entry) => item(entry.Put ?? entry.Update ?? entry.Delete),
      );
    case 'BatchWriteItemCommand':
      return Object.values(
        (input.RequestItems as Record<string, Array<Record<string, Record<string, unknown>>>>) ?? {},
      )
        .flat()
        .flatMap((request) => item(request.PutRequest ?? request.DeleteRequest));
    default:
      return [];
  }
}

/** Counts `dynamodb.<Command>` per request sent, and `written.<kind>` per item it writes. */
export function countDynamoRequests(client: DynamoDBClient, counts: Counts): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? 'unknown';
      counts.add(`dynamodb.${command.replace(/Command$/, '')}`);
      for (const kind of itemsWritten(command, args.input as Record<string, unknown>))
        counts.add(`written.${kind}`);
      return next(args);
    },
    { step: 'initialize', name: 'scaleBenchCounter' },
  );
}
