// The operations HTTP server of every Conveyor process: /healthz, /readyz and /metrics, plus the routes a process adds (the reconcile API).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorMessage } from './errors.ts';

/** What a probe answers: 200 with `body` when `ok`, else 503. */
export interface Probe {
  ok: boolean;
  body: string;
}

export type Route = (req: IncomingMessage, res: ServerResponse) => Promise<unknown>;

export interface OpsServerOptions {
  host: string;
  port: number;
  /** Liveness (the kubelet restarts the pod when it fails). */
  health: () => Probe;
  /** Readiness (the Service sends traffic only while it holds). @defaultValue the health probe */
  ready?: () => Probe;
  /** The Prometheus exposition of the process's metrics. */
  metrics: () => Promise<{ contentType: string; body: string }>;
  /** Further paths, any method, such as `POST /v1/reconcile`. */
  routes?: Readonly<Record<string, Route>>;
  /** Told about a route that threw (it was answered 500). */
  onError?: (error: unknown, path: string) => void;
}

export interface OpsServer {
  /** `http://host:port` actually bound (port 0 picks a free one). */
  url: string;
  close(): Promise<void>;
}

/**
 * Starts listening; rejects with a message naming the address when it cannot (a port in use).
 * Probes and metrics answer GET and HEAD only; they never show object contents.
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const routes = options.routes ?? {};
  const paths = ['/healthz', '/readyz', '/metrics', ...Object.keys(routes)];
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    answer(options, routes, paths, path, req, res).catch((error: unknown) => {
      options.onError?.(error, path);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    throw new Error(`cannot serve HTTP on ${options.host}:${options.port}: ${errorMessage(error)}`);
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function answer(
  options: OpsServerOptions,
  routes: Readonly<Record<string, Route>>,
  paths: readonly string[],
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const route = routes[path];
  if (route !== undefined) {
    await route(req, res);
    return;
  }
  if (!paths.includes(path)) {
    text(res, 404, `not found; try ${paths.join(', ')}\n`);
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  if (path === '/metrics') {
    const { contentType, body } = await options.metrics();
    res.writeHead(200, { 'content-type': contentType }).end(body);
    return;
  }
  const probe = path === '/readyz' ? (options.ready ?? options.health)() : options.health();
  text(res, probe.ok ? 200 : 503, probe.body);
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
}
