/**
 * TEST FAULT INJECTOR, not a fake API server. A loopback HTTP proxy in front of the real local
 * kube-apiserver that forwards every request (with the upstream kubeconfig's TLS identity, like
 * `kubectl proxy`) and, when told to, answers the next N matching requests with an injected failure
 * (429 or 5xx with Retry-After, or a dropped connection) so that the adapter's retries can be tested
 * against real API responses. It records every request it saw and what it did with it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';

export type Fault =
  /** Answer with this status (and Retry-After when given) without forwarding. */
  | { kind: 'status'; status: number; retryAfter?: string }
  /** Forward, let the API server act, then answer the client with this status: a lost response. */
  | { kind: 'status-after-forward'; status: number; retryAfter?: string }
  /** Close the client's connection without an answer. */
  | { kind: 'reset' };

export interface FaultPlan {
  fault: Fault;
  /** How many matching requests get the fault. */
  times: number;
  /** Which requests count; all when omitted. */
  match?: (request: { method: string; path: string }) => boolean;
}

export interface SeenRequest {
  method: string;
  /** Path and query, as the client sent them. */
  path: string;
  /** The fault applied, or undefined when the request was forwarded untouched. */
  fault?: Fault['kind'];
  /** The status the client got (undefined after a reset). */
  status?: number;
}

export interface KubeFaultProxy {
  /** http://127.0.0.1:<port>, for a kubeconfig cluster `server`. */
  url: string;
  seen: SeenRequest[];
  inject(plan: FaultPlan): void;
  /** Forgets the requests seen and any faults not yet used. */
  reset(): void;
  close(): Promise<void>;
}

const REASONS: Record<number, string> = {
  429: 'TooManyRequests',
  500: 'InternalError',
  502: 'BadGateway',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

function statusBody(status: number): string {
  return JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `injected by kube-fault-proxy (HTTP ${status})`,
    reason: REASONS[status] ?? 'InternalError',
    code: status,
  });
}

function sendInjected(res: ServerResponse, status: number, retryAfter: string | undefined): void {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
  res.writeHead(status, headers);
  res.end(statusBody(status));
}

/** Starts the proxy in front of the current cluster of `upstream` (an https API server). */
export async function startKubeFaultProxy(upstream: KubeConfig): Promise<KubeFaultProxy> {
  const cluster = upstream.getCurrentCluster();
  if (!cluster) throw new Error('kube-fault-proxy: the upstream kubeconfig has no current cluster');
  const target = new URL(cluster.server);
  if (target.protocol !== 'https:')
    throw new Error(`kube-fault-proxy: upstream ${cluster.server} is not https`);
  // CA, client certificate and any bearer token of the upstream identity.
  const identity: RequestOptions & { headers?: Record<string, string> } = {};
  await upstream.applyToHTTPSOptions(identity);

  const plans: Array<FaultPlan & { left: number }> = [];
  const seen: SeenRequest[] = [];

  function takeFault(method: string, path: string): Fault | undefined {
    const plan = plans.find((p) => p.left > 0 && (p.match?.({ method, path }) ?? true));
    if (!plan) return undefined;
    plan.left--;
    return plan.fault;
  }

  function forward(
    req: IncomingMessage,
    body: Buffer,
    onResponse: (upstream: IncomingMessage) => void,
    fail: () => void,
  ) {
    const headers: Record<string, string | string[] | undefined> = { ...req.headers, ...identity.headers };
    delete headers.host;
    delete headers.connection;
    const outgoing = httpsRequest(
      {
        protocol: 'https:',
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: `${target.pathname.replace(/\/+$/, '')}${req.url ?? '/'}`,
        headers: { ...headers, 'content-length': String(body.length) },
        ca: identity.ca,
        cert: identity.cert,
        key: identity.key,
      },
      onResponse,
    );
    outgoing.on('error', fail);
    outgoing.end(body);
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const method = req.method ?? 'GET';
      const path = req.url ?? '/';
      const body = Buffer.concat(chunks);
      const fault = takeFault(method, path);
      const record: SeenRequest = { method, path, ...(fault ? { fault: fault.kind } : {}) };
      seen.push(record);
      const badGateway = () => {
        record.status = 502;
        if (!res.headersSent) sendInjected(res, 502, undefined);
      };

      if (fault?.kind === 'reset') {
        req.socket.destroy();
        return;
      }
      if (fault?.kind === 'status') {
        record.status = fault.status;
        sendInjected(res, fault.status, fault.retryAfter);
        return;
      }
      forward(
        req,
        body,
        (answer) => {
          if (fault?.kind === 'status-after-forward') {
            answer.resume();
            answer.on('end', () => {
              record.status = fault.status;
              sendInjected(res, fault.status, fault.retryAfter);
            });
            return;
          }
          record.status = answer.statusCode;
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
        badGateway,
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    inject(plan) {
      if (!Number.isInteger(plan.times) || plan.times < 1) {
        throw new Error(`kube-fault-proxy: times must be a positive integer, got ${plan.times}`);
      }
      plans.push({ ...plan, left: plan.times });
    },
    reset() {
      plans.length = 0;
      seen.length = 0;
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
