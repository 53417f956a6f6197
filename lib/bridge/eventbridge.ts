import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { BusEntry } from './entries.ts';
import type { EntryOutcome, PutEventsPort } from './forwarder.ts';

export interface EventBridgePortOptions {
  region: string;
  /** A non-AWS endpoint (e.g. a local recorder in tests); the default resolves EventBridge's own. */
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  requestTimeoutMs?: number;
}

/**
 * PutEvents through the AWS SDK. The SDK's own retries are off (`maxAttempts: 1`): the forwarder
 * retries, and it must see each failure to retry only the failed entries and keep per-pod order.
 */
export function eventBridgePort(options: EventBridgePortOptions): PutEventsPort & { destroy(): void } {
  const client = new EventBridgeClient({
    region: options.region,
    maxAttempts: 1,
    requestHandler: { requestTimeout: options.requestTimeoutMs ?? 10_000, connectionTimeout: 5_000 },
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
  });
  return {
    async putEvents(entries: BusEntry[]): Promise<EntryOutcome[]> {
      const response = await client.send(new PutEventsCommand({ Entries: entries }));
      const results = response.Entries ?? [];
      return entries.map((_entry, index): EntryOutcome => {
        const result = results[index];
        if (result?.ErrorCode) {
          return {
            ok: false,
            code: result.ErrorCode,
            ...(result.ErrorMessage ? { message: result.ErrorMessage } : {}),
          };
        }
        if (result?.EventId) return { ok: true };
        return { ok: false, code: 'MissingResult', message: 'PutEvents answered no result for this entry' };
      });
    },
    destroy: () => client.destroy(),
  };
}
