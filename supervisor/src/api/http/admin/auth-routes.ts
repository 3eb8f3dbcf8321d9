import type { AdminAuth } from './admin-auth.js';
import { clearedCookie, sessionCookie } from './cookies.js';
import type { EventHub } from './events.js';
import { json } from './http.js';
import type { LoginSession, LoginSessions } from './login-sessions.js';
import { MIN_PASSWORD_LENGTH } from './password-rules.js';
import type { Route } from './router.js';
import { text } from './validate.js';

/** The login's own routes: where the page starts, first use, log in and out, a new password. */
export function authRoutes(auth: AdminAuth, sessions: LoginSessions, events: EventHub): Route[] {
  const loggedIn = (s: LoginSession, secure: boolean) => json(200, { loggedIn: true, csrf: s.csrf }, { 'Set-Cookie': sessionCookie(s.id, sessions.maxAgeMs, secure) });
  return [
    {
      method: 'GET',
      path: '/api/session',
      open: true,
      handle: async ({ login }) =>
        json(200, { passwordSet: await auth.passwordSet(), loggedIn: login !== undefined, minPasswordLength: MIN_PASSWORD_LENGTH, ...(login ? { csrf: login.csrf } : {}) }),
    },
    {
      method: 'POST',
      path: '/api/setup',
      open: true,
      handle: async ({ req, body }) => loggedIn(await auth.setup(text(body(), 'password', 4096), text(body(), 'repeat', 4096), req.remote), req.secure),
    },
    {
      method: 'POST',
      path: '/api/login',
      open: true,
      handle: async ({ req, body }) => loggedIn(await auth.login(text(body(), 'password', 4096), req.remote), req.secure),
    },
    {
      method: 'POST',
      path: '/api/logout',
      handle: async ({ req, login }) => {
        if (login) {
          auth.logout(login);
          events.closeLogin(login.id);
        }
        return json(200, { loggedIn: false }, { 'Set-Cookie': clearedCookie(req.secure) });
      },
    },
    {
      method: 'POST',
      path: '/api/password',
      handle: async ({ req, login, body }) => {
        const b = body();
        if (login) await auth.change(login, text(b, 'current', 4096), text(b, 'password', 4096), text(b, 'repeat', 4096), req.remote);
        return json(200, { changed: true });
      },
    },
  ];
}
