import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';

export interface ProbeStatus {
  ok: boolean;
  detail: Record<string, unknown>;
}

export interface ProbeServerOptions {
  host: string;
  port: number;
  health: () => ProbeStatus;
  ready: () => ProbeStatus;
  /** The exposition text, rendered per scrape (prom-client collects asynchronously). */
  metrics: () => Promise<string> | string;
}

export interface ProbeServer {
  readonly port: number;
  close(): Promise<void>;
}

/** `/healthz` (liveness), `/readyz` (readiness) and `/metrics` (Prometheus text format). */
export async function startProbeServer(options: ProbeServerOptions): Promise<ProbeServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/healthz' || path === '/readyz') {
      let status: ProbeStatus;
      try {
        status = path === '/healthz' ? options.health() : options.ready();
      } catch (error) {
        status = { ok: false, detail: { error: error instanceof Error ? error.message : String(error) } };
      }
      res
        .writeHead(status.ok ? 200 : 503, { 'Content-Type': 'application/json' })
        .end(`${JSON.stringify({ ok: status.ok, ...status.detail })}\n`);
      return;
    }
    if (path === '/metrics') {
      Promise.resolve()
        .then(options.metrics)
        .then(
          (text) => res.writeHead(200, { 'Content-Type': Registry.PROMETHEUS_CONTENT_TYPE }).end(text),
          (error: unknown) =>
            res
              .writeHead(500, { 'Content-Type': 'text/plain' })
              .end(`metrics failed: ${error instanceof Error ? error.message : String(error)}\n`),
        );
      return;
    }
    res
      .writeHead(404, { 'Content-Type': 'text/plain' })
      .end('not found: try /healthz, /readyz or /metrics\n');
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
