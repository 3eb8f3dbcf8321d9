import type { SessionLogEntry } from '../../../domain/session-log.js';
import type { Clock } from '../../../ports/clock.js';
import type { CredentialStore, PasswordHasher } from '../../../ports/admin-credentials.js';
import type { Disposable } from '../../../ports/disposable.js';
import type { Logger } from '../../../ports/logger.js';
import type { NewSecret } from '../../../ports/secrets.js';
import type { AdminApi } from './admin-api.js';
import { AdminAuth } from './admin-auth.js';
import { authRoutes } from './auth-routes.js';
import { EventHub } from './events.js';
import { imageRoutes } from './image-routes.js';
import type { AdminRequest, AdminResponse } from './http.js';
import { LoginSessions } from './login-sessions.js';
import { LoginThrottle } from './login-throttle.js';
import { AdminRouter } from './router.js';
import { apiRoutes } from './routes.js';

export interface AdminSiteDeps {
  readonly api: AdminApi;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly newSecret: NewSecret;
  readonly hasher: PasswordHasher;
  readonly store: CredentialStore;
  readonly renderCsv: (entries: readonly SessionLogEntry[]) => string;
  readonly maxPoolSize: number;
  /** A login ends after this long without a request. */
  readonly idleMs: number;
}

/** The admin page's API put together: logins, routes, live events. No sockets: the server adapter brings requests. */
export class AdminSiteApi {
  readonly #router: AdminRouter;
  readonly #sessions: LoginSessions;
  readonly #events: EventHub;

  constructor(deps: AdminSiteDeps) {
    const { api, clock, logger } = deps;
    this.#sessions = new LoginSessions(clock, deps.newSecret, { idleMs: deps.idleMs });
    this.#events = new EventHub(api, clock);
    const auth = new AdminAuth({ hasher: deps.hasher, store: deps.store, sessions: this.#sessions, throttle: new LoginThrottle(clock), logger });
    const routes = [
      ...authRoutes(auth, this.#sessions, this.#events),
      ...apiRoutes({ api, events: this.#events, clock, renderCsv: deps.renderCsv, maxPoolSize: deps.maxPoolSize }),
      ...imageRoutes(api),
    ];
    this.#router = new AdminRouter(routes, { sessions: this.#sessions, logger });
  }

  /** Starts listening to the supervisor for the event streams. */
  start(): Disposable {
    return this.#events.start();
  }

  handle(req: AdminRequest): Promise<AdminResponse> {
    return this.#router.handle(req);
  }

  /** Keeps the event streams alive, and closes those of logins that ended. */
  heartbeat(): void {
    this.#events.heartbeat((login) => this.#sessions.peek(login) !== undefined);
  }
}
