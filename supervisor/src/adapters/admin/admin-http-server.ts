import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { AdminRequest, AdminResponse, AdminUpload } from '../../ports/admin-http.js';
import { TabulaError } from '../../domain/errors.js';
import type { Disposable } from '../../ports/disposable.js';
import { writeHashed } from '../hashed-write.js';
import { listenServer, send, TEXT_TYPE } from '../http/listen.js';
import type { Asset } from './static-assets.js';

/** Bodies are a few fields of JSON; anything bigger is not the page (but for an upload, which is streamed). */
const MAX_BODY_BYTES = 64 * 1024;
/**
 * A connection silent this long is closed. An image upload takes as long as it
 * takes, so there is no limit on a whole request (Node's requestTimeout), only
 * on silence; event streams say something every 25 s.
 */
const IDLE_MS = 5 * 60_000;

/**
 * For every response: the page runs only its own scripts and styles, is never
 * framed, and leaks no URL to elsewhere.
 */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

export interface AdminSite {
  /** The API (everything under /api/). */
  readonly handle: (req: AdminRequest) => Promise<AdminResponse>;
  readonly assets: ReadonlyMap<string, Asset>;
  /** Whether a connection that reached this local address is turned away (the station LAN's). */
  readonly refuses: (localAddress: string) => boolean;
  /** Told of each connection turned away. */
  readonly refused: (localAddress: string, remoteAddress: string) => void;
}

export type Listening = { readonly port: number } & Disposable;

/** HTTPS on `host` (every address when undefined). */
export function listenAdminHttps(host: string | undefined, port: number, tls: { readonly cert: string; readonly key: string }, site: AdminSite): Promise<Listening> {
  const server = createHttpsServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, (req, res) => serve(req, res, site, true));
  return start(server as unknown as Server, host, port, site, 'the admin page (HTTPS)');
}

/** Plain HTTP, for loopback only (development and tests): the caller gives 127.0.0.1. */
export function listenAdminHttp(host: string, port: number, site: AdminSite): Promise<Listening> {
  const server = createHttpServer((req, res) => serve(req, res, site, false));
  return start(server, host, port, site, 'the admin page (HTTP)');
}

function start(server: Server, host: string | undefined, port: number, site: AdminSite, what: string): Promise<Listening> {
  server.requestTimeout = 0;
  server.timeout = IDLE_MS;
  // Checked on the TCP connection, before TLS or HTTP: nothing is answered on the station LAN.
  server.on('connection', (socket: Socket) => {
    const local = plainIpv4(socket.localAddress);
    if (!site.refuses(local)) return;
    site.refused(local, plainIpv4(socket.remoteAddress));
    socket.destroy();
  });
  return listenServer(server, host, port, what);
}

function serve(req: IncomingMessage, res: ServerResponse, site: AdminSite, secure: boolean): void {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
  const url = new URL(req.url ?? '/', 'http://admin.invalid');
  if (url.pathname.startsWith('/api/')) {
    void api(req, res, url, site, secure).catch(() => {
      if (!res.headersSent) send(req, res, 500, TEXT_TYPE, 'internal error\n');
      else res.destroy();
    });
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(req, res, 405, TEXT_TYPE, `method ${req.method ?? ''} not allowed\n`);
  }
  const asset = site.assets.get(url.pathname === '/index.html' ? '/' : url.pathname);
  if (asset === undefined) return send(req, res, 404, TEXT_TYPE, 'not found\n');
  // Never cached (a few small files): an upgraded supervisor's page is never stale.
  send(req, res, 200, asset.type, asset.body);
}

async function api(req: IncomingMessage, res: ServerResponse, url: URL, site: AdminSite, secure: boolean): Promise<void> {
  const upload = req.method === 'POST' && mediaType(req) === 'application/octet-stream' ? uploadOf(req) : undefined;
  let body = '';
  try {
    if (upload === undefined) body = await readBody(req);
  } catch (e) {
    const err = e instanceof TabulaError ? e : new TabulaError('invalid-argument', 'the request body could not be read');
    // The rest of the body is not read: the connection goes once the answer is out.
    res.on('finish', () => req.destroy());
    return reply(req, res, { kind: 'body', status: 413, type: 'application/json', body: JSON.stringify({ error: { code: err.code, message: err.message } }) + '\n' });
  }
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  const response = await site.handle({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers, body, remote: plainIpv4(req.socket.remoteAddress), secure, ...(upload ? { upload: upload.port } : {}) });
  if (upload !== undefined && !upload.read()) {
    // Refused before its body was read: the rest of it is not waited for.
    res.setHeader('Connection', 'close');
    res.on('finish', () => req.destroy());
  }
  reply(req, res, response);
}

function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** The body of an upload, for the route to stream into a file once it has accepted the request. */
function uploadOf(req: IncomingMessage): { port: AdminUpload; read: () => boolean } {
  const header = req.headers['content-length'];
  const declared = header === undefined || !/^\d+$/.test(header) ? undefined : Number(header);
  let read = false;
  const writeTo: AdminUpload['writeTo'] = async (path, progress, signal) => {
    if (read) throw new TabulaError('invalid-argument', 'the request body was taken already');
    read = true;
    let got = 0;
    try {
      const count = (n: number) => {
        got += n;
        progress(n);
      };
      return await writeHashed(req, path, count, signal);
    } catch (e) {
      if (signal.aborted) throw e;
      if (req.complete) throw new TabulaError('disk-failed', `cannot write ${path}: ${(e as Error).message}`, { cause: e });
      throw new TabulaError('disk-failed', `the upload was cut short: ${got} of ${declared ?? 'unknown'} bytes arrived before the connection ended`, { cause: e });
    }
  };
  return { port: { length: declared !== undefined && Number.isSafeInteger(declared) ? declared : undefined, writeTo }, read: () => read };
}

function reply(req: IncomingMessage, res: ServerResponse, response: AdminResponse): void {
  if (response.kind === 'body') {
    for (const [k, v] of Object.entries(response.headers ?? {})) res.setHeader(k, v);
    return send(req, res, response.status, response.type, response.body);
  }
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'X-Accel-Buffering': 'no' });
  res.flushHeaders();
  // No Nagle: an event is a few hundred bytes that should reach the page now.
  req.socket.setNoDelay(true);
  const stream = response.open({ send: (text) => void res.write(text), close: () => res.end() });
  res.on('close', () => stream.dispose());
}

/** An IPv4 peer of a dual-stack socket as people write it (192.0.2.1, not ::ffff:192.0.2.1). */
function plainIpv4(address: string | undefined): string {
  return (address ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.pause();
        reject(new TabulaError('invalid-argument', `the request body is larger than ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
