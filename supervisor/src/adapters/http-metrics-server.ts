import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Disposable } from '../ports/disposable.js';
import { listenHttp, readOnlyMethod, send, TEXT_TYPE } from './http/listen.js';

const METRICS_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * Serves `GET /metrics` for Prometheus over plain HTTP. `render` is called on
 * every scrape, so the text is always current; nothing is cached.
 */
export class HttpMetricsServer {
  listen(host: string, port: number, render: () => string): Promise<{ port: number } & Disposable> {
    return listenHttp(host, port, 'metrics', (req, res) => respond(req, res, render));
  }
}

function respond(req: IncomingMessage, res: ServerResponse, render: () => string): void {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/metrics' && path !== '/') return send(req, res, 404, TEXT_TYPE, 'not found: metrics are at /metrics\n');
  if (!readOnlyMethod(req, res)) return;
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
