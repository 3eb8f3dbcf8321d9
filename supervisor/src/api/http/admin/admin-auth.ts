import { TabulaError } from '../../../domain/errors.js';
import type { CredentialStore, PasswordHasher } from '../../../ports/admin-credentials.js';
import type { Logger } from '../../../ports/logger.js';
import type { LoginSession, LoginSessions } from './login-sessions.js';
import type { LoginThrottle } from './login-throttle.js';
import { checkNewPassword, MAX_PASSWORD_LENGTH } from './password-rules.js';

export interface AdminAuthDeps {
  readonly hasher: PasswordHasher;
  readonly store: CredentialStore;
  readonly sessions: LoginSessions;
  readonly throttle: LoginThrottle;
  readonly logger: Logger;
}

/**
 * The one local admin: a password set on first use, then logins. Every login,
 * failed login and password change is logged here, once, with the client's
 * address.
 */
export class AdminAuth {
  readonly #deps: AdminAuthDeps;
  /** Password changes run one at a time, so two first visitors cannot both set one. */
  #changing: Promise<unknown> = Promise.resolve();

  constructor(deps: AdminAuthDeps) {
    this.#deps = deps;
  }

  async passwordSet(): Promise<boolean> {
    return (await this.#load()) !== null;
  }

  /** First use: sets the password and logs in. Refused (conflict) once a password exists. */
  setup(password: string, repeated: string, address: string): Promise<LoginSession> {
    return this.#exclusive(async () => {
      if ((await this.#load()) !== null) throw new TabulaError('conflict', 'the admin password is already set: log in with it');
      checkNewPassword(password, repeated);
      await this.#save(await this.#deps.hasher.hash(password));
      this.#deps.logger.notice('admin-password-set', { address });
      return this.#loggedIn(address);
    });
  }

  async login(password: string, address: string): Promise<LoginSession> {
    const { throttle, logger } = this.#deps;
    const wait = throttle.waitMs(address);
    if (wait > 0) {
      logger.warning('admin-login-failed', { address, reason: 'throttled' });
      throw new TabulaError('access-denied', `too many wrong passwords: try again in ${Math.ceil(wait / 1000)} s`, { retryable: true });
    }
    const record = await this.#load();
    if (record === null) throw new TabulaError('conflict', 'no admin password is set yet: set one first');
    if (password.length > MAX_PASSWORD_LENGTH || !(await this.#deps.hasher.verify(password, record))) {
      throttle.failed(address);
      logger.warning('admin-login-failed', { address, reason: 'wrong-password' });
      throw new TabulaError('access-denied', 'wrong password');
    }
    throttle.succeeded(address);
    return this.#loggedIn(address);
  }

  logout(session: LoginSession): void {
    this.#deps.sessions.end(session.id);
    this.#deps.logger.notice('admin-logout', { address: session.address });
  }

  /** A new password, given the current one; every other login ends. */
  change(session: LoginSession, current: string, password: string, repeated: string, address: string): Promise<void> {
    return this.#exclusive(async () => {
      const record = await this.#load();
      if (record === null || current.length > MAX_PASSWORD_LENGTH || !(await this.#deps.hasher.verify(current, record))) {
        this.#deps.throttle.failed(address);
        this.#deps.logger.warning('admin-login-failed', { address, reason: 'wrong-current-password' });
        throw new TabulaError('access-denied', 'the current password is wrong');
      }
      checkNewPassword(password, repeated);
      await this.#save(await this.#deps.hasher.hash(password));
      this.#deps.sessions.endOthers(session.id);
      this.#deps.logger.notice('admin-password-changed', { address });
    });
  }

  #loggedIn(address: string): LoginSession {
    const session = this.#deps.sessions.create(address);
    this.#deps.logger.notice('admin-login', { address });
    return session;
  }

  /** Read each time (a small file): root deleting it is how a forgotten password is reset, no restart needed. */
  async #load(): Promise<string | null> {
    return (await this.#deps.store.load()) ?? null;
  }

  async #save(record: string): Promise<void> {
    await this.#deps.store.save(record);
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#changing.then(work, work);
    this.#changing = run.catch(() => undefined);
    return run;
  }
}
