import http from 'node:http';
import https from 'node:https';
import { type KubeConfig, Watch } from '@kubernetes/client-node';

/** A non-2xx answer of the API server, with its status code and the Status reason when it sent one. */
export class KubeApiError extends Error {
  override name = 'KubeApiError';
  readonly status: number;
  readonly reason: string | undefined;
  constructor(status: number, message: string, reason?: string) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface WatchStream {
  abort(): void;
}

/**
 * The few raw API calls the bridge makes. Raw JSON rather than the generated typed client: objects stay
 * in the API server's wire form (timestamps as strings, unknown fields kept) and Lease times are
 * written with the microsecond precision the server expects.
 */
export interface KubeApi {
  request(
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    options?: { query?: Query; body?: unknown },
  ): Promise<unknown>;
  /** Streams watch notifications; `onDone` is called once, with the error if the stream failed. */
  watch(
    path: string,
    query: Query,
    onEvent: (type: string, object: unknown) => void,
    onDone: (error: unknown) => void,
  ): Promise<WatchStream>;
}

export function kubeApi(kc: KubeConfig, options: { requestTimeoutMs?: number } = {}): KubeApi {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('the kubeconfig has no current cluster (no server to talk to)');
  const watcher = new Watch(kc);
  const timeoutMs = options.requestTimeoutMs ?? 30_000;

  async function request(
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    { query, body }: { query?: Query; body?: unknown } = {},
  ): Promise<unknown> {
    const url = new URL(server!.replace(/\/+$/, '') + path);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const requestOptions: https.RequestOptions = {
      method,
      headers: {
        Accept: 'application/json',
        ...(payload === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
    };
    await kc.applyToHTTPSOptions(requestOptions);
    const transport = url.protocol === 'http:' ? http : https;
    if (url.protocol === 'http:') delete requestOptions.agent;
    return await new Promise((resolve, reject) => {
      const req = transport.request(url, requestOptions, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          let parsed: unknown = text;
          try {
            parsed = text === '' ? undefined : JSON.parse(text);
          } catch {
            // Not JSON (a proxy's error page): keep the text for the message.
          }
          if (status >= 200 && status < 300) {
            resolve(parsed);
            return;
          }
          const statusObject = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as {
            message?: string;
            reason?: string;
          };
          const message = statusObject.message ?? (typeof parsed === 'string' ? parsed.slice(0, 200) : '');
          reject(
            new KubeApiError(
              status,
              `${method} ${url.pathname} answered ${status}: ${message}`,
              statusObject.reason,
            ),
          );
        });
      });
      req.setTimeout(timeoutMs, () =>
        req.destroy(new Error(`${method} ${url.pathname} timed out after ${timeoutMs} ms`)),
      );
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  async function watch(
    path: string,
    query: Query,
    onEvent: (type: string, object: unknown) => void,
    onDone: (error: unknown) => void,
  ): Promise<WatchStream> {
    const controller = await watcher.watch(path, query, onEvent, onDone);
    return { abort: () => controller.abort() };
  }

  return { request, watch };
}
