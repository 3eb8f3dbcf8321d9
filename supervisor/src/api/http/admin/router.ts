import { asTabulaError, TabulaError } from '../../../domain/errors.js';
import type { Fields, Logger } from '../../../ports/logger.js';
import { cookieValue, SESSION_COOKIE } from './cookies.js';
import { failure, refusal, type AdminRequest, type AdminResponse } from './http.js';
import { sameSecret, type LoginSession, type LoginSessions } from './login-sessions.js';
import { objectBody, type Body } from './validate.js';

/** The header every POST of a logged-in page carries: its login's CSRF token. */
export const CSRF_HEADER = 'x-tabula-csrf';

export interface RouteContext {
  readonly req: AdminRequest;
  /** The login; always there, except on `open` routes. */
  readonly login: LoginSession | undefined;
  /** The JSON body (throws invalid-argument naming what is wrong). */
  body(): Body;
}

export interface Route {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** Reachable without a login: the login itself. */
  readonly open?: boolean;
  /** An admin action: logged once when done (`admin-action action=…`) with the fields it returns. */
  readonly action?: string;
  /** Its body is a file (application/octet-stream, streamed: `req.upload`), not JSON. */
  readonly upload?: boolean;
  handle(ctx: RouteContext): Promise<AdminResponse | { readonly response: AdminResponse; readonly log: Fields }>;
}

export interface RouterDeps {
  readonly sessions: LoginSessions;
  readonly logger: Logger;
}

/**
 * Checks what every request must have before any route runs: a login (but
 * for `open` routes), and on POSTs a JSON body, no foreign Origin and the
 * login's CSRF token. Errors become `{ error: { code, message } }` with a
 * status to match.
 */
export class AdminRouter {
  readonly #routes: readonly Route[];
  readonly #deps: RouterDeps;

  constructor(routes: readonly Route[], deps: RouterDeps) {
    this.#routes = routes;
    this.#deps = deps;
  }

  async handle(req: AdminRequest): Promise<AdminResponse> {
    const same = this.#routes.filter((r) => r.path === req.path);
    if (same.length === 0) return refusal('not-found', `no such API: ${req.path}`);
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const route = same.find((r) => r.method === method);
    if (route === undefined) return failure(new TabulaError('invalid-argument', `${req.method} is not allowed on ${req.path}`), 405, { Allow: same.map((r) => r.method).join(', ') });
    if (route.method === 'POST') {
      const refused = postRefusal(req, route.upload ? 'application/octet-stream' : 'application/json');
      if (refused !== undefined) return refused;
    }
    const login = this.#deps.sessions.use(cookieValue(req.headers['cookie'], SESSION_COOKIE));
    if (!route.open) {
      if (login === undefined) return refusal('access-denied', 'not logged in, or the login expired: log in again', 401);
      if (route.method === 'POST' && !sameSecret(req.headers[CSRF_HEADER] ?? '', login.csrf)) {
        // A logged-in browser sent a POST without its token: a foreign page, or a stale one.
        this.#deps.logger.warning('admin-request-refused', { path: req.path, address: req.remote, why: 'csrf' });
        return refusal('access-denied', `the request lacks this login's ${CSRF_HEADER} header: reload the page`, 403);
      }
    }
    let body: Body | undefined;
    const ctx: RouteContext = { req, login, body: () => (body ??= objectBody(req.body)) };
    try {
      const out = await route.handle(ctx);
      if (!('response' in out)) return out;
      if (route.action) this.#deps.logger.notice('admin-action', { action: route.action, address: req.remote, ...out.log });
      return out.response;
    } catch (e) {
      const err = asTabulaError(e);
      if (route.action) this.#deps.logger.info('admin-action-refused', { action: route.action, address: req.remote, code: err.code, error: err.message });
      return failure(err, statusFor(err, route));
    }
  }
}

/** A wrong password at the login is 401; a client locked out for a while is told to come back later (429). */
function statusFor(err: TabulaError, route: Route): number | undefined {
  if (err.code !== 'access-denied') return undefined;
  if (err.retryable) return 429;
  return route.open ? 401 : undefined;
}

/**
 * A POST must say it is JSON (or, for an upload, a file) and come from this
 * origin: a form on another site can send neither (browsers preflight such a
 * POST across origins, and nothing here answers a preflight); the CSRF header
 * is checked besides.
 */
function postRefusal(req: AdminRequest, wanted: string): AdminResponse | undefined {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== wanted) return refusal('invalid-argument', `a POST to ${req.path} must carry Content-Type: ${wanted}`, 415);
  const origin = req.headers['origin'];
  if (origin !== undefined) {
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      host = '';
    }
    if (host !== (req.headers['host'] ?? '')) return refusal('access-denied', `requests from ${origin} are not accepted`, 403);
  }
  return undefined;
}
