import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TabulaError } from '../domain/errors.js';
import type { Disposable } from '../ports/disposable.js';

const METRICS_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';

/** Listen errors that mean the configured address itself is wrong, not that something else went wrong. */
const BAD_ADDRESS = new Set(['EADDRNOTAVAIL', 'EACCES', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME']);

/**
 * Serves `GET /metrics` for Prometheus over plain HTTP. `render` is called on
 * every scrape, so the text is always current; nothing is cached.
 */
export class HttpMetricsServer {
  async listen(host: string, port: number, render: () => string): Promise<{ port: number } & Disposable> {
    const where = hostPort(host, port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TabulaError('invalid-argument', `cannot serve metrics on ${where}: not a TCP port`);
    const server: Server = createServer((req, res) => respond(req, res, render));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => {
        const errno = (e as NodeJS.ErrnoException).code ?? '';
        // EADDRINUSE may clear once the other process goes; a wrong address will not.
        const code = BAD_ADDRESS.has(errno) ? 'invalid-argument' : 'internal';
        reject(new TabulaError(code, `cannot serve metrics on ${where}: ${e.message}`, { cause: e, retryable: errno === 'EADDRINUSE' }));
      });
      server.listen({ host, port, exclusive: true }, () => resolve());
    });
    // After listening, errors belong to single connections, which Node already closes; none may crash the daemon.
    server.on('error', () => undefined);
    return {
      port: (server.address() as AddressInfo).port,
      dispose: () => {
        server.close();
        // Keep-alive connections (Prometheus holds one open) would otherwise keep the process alive.
        server.closeAllConnections();
      },
    };
  }
}

function respond(req: IncomingMessage, res: ServerResponse, render: () => string): void {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/metrics' && path !== '/') return send(req, res, 404, TEXT_TYPE, 'not found: metrics are at /metrics\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(req, res, 405, TEXT_TYPE, `method ${req.method ?? ''} not allowed\n`);
  }
  if (path === '/') return send(req, res, 200, TEXT_TYPE, 'Tabula supervisor: Prometheus metrics are at /metrics\n');
  let body: string;
  try {
    body = render();
  } catch (e) {
    const message = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    return send(req, res, 500, TEXT_TYPE, `cannot render metrics: ${message}\n`);
  }
  send(req, res, 200, METRICS_TYPE, body);
}

function send(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
