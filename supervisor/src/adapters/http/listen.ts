import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TabulaError } from '../../domain/errors.js';
import type { Disposable } from '../../ports/disposable.js';

/** Listen errors that mean the configured address itself is wrong, not that something else went wrong. */
const BAD_ADDRESS = new Set(['EADDRNOTAVAIL', 'EACCES', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME']);

export const TEXT_TYPE = 'text/plain; charset=utf-8';

/** A plain HTTP server on one address; `what` names it in errors ("metrics", "the station endpoint"). */
export function listenHttp(host: string, port: number, what: string, handler: RequestListener): Promise<{ port: number } & Disposable> {
  return listenServer(createServer(handler), host, port, what);
}

/**
 * Starts `server` (HTTP or HTTPS) listening on host:port, every address when
 * `host` is undefined. Resolves once it listens; its dispose stops it and
 * drops the connections still open.
 */
export async function listenServer(server: Server, host: string | undefined, port: number, what: string): Promise<{ port: number } & Disposable> {
  const where = host === undefined ? `port ${port}` : host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TabulaError('invalid-argument', `cannot serve ${what} on ${where}: not a TCP port`);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => {
      const errno = (e as NodeJS.ErrnoException).code ?? '';
      // EADDRINUSE may clear once the other process goes; a wrong address will not.
      const code = BAD_ADDRESS.has(errno) ? 'invalid-argument' : 'internal';
      reject(new TabulaError(code, `cannot serve ${what} on ${where}: ${e.message}`, { cause: e, retryable: errno === 'EADDRINUSE' }));
    });
    server.listen({ ...(host === undefined ? {} : { host }), port, exclusive: true }, () => resolve());
  });
  // After listening, errors belong to single connections, which Node already closes; none may crash the daemon.
  server.on('error', () => undefined);
  return {
    port: (server.address() as AddressInfo).port,
    dispose: () => {
      server.close();
      // Keep-alive connections (and event streams) would otherwise keep the process alive.
      server.closeAllConnections();
    },
  };
}

export function send(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Only GET and HEAD are served; anything else gets 405 here. Returns whether the method is fine. */
export function readOnlyMethod(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return true;
  res.setHeader('Allow', 'GET, HEAD');
  send(req, res, 405, TEXT_TYPE, `method ${req.method ?? ''} not allowed\n`);
  return false;
}
