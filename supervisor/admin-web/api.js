// The page's one way to the supervisor: JSON over fetch, with the login's
// CSRF token on every POST, and errors turned into ApiError (code + message).

let csrf = '';

export function setCsrf(token) {
  csrf = token ?? '';
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Told when the server says the login is gone (401), so the page can ask to log in again. */
let onLoggedOut = () => {};
export function whenLoggedOut(fn) {
  onLoggedOut = fn;
}

async function call(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (method === 'POST') {
    init.headers['Content-Type'] = 'application/json';
    init.headers['X-Tabula-CSRF'] = csrf;
    init.body = JSON.stringify(body ?? {});
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'unreachable', 'the supervisor cannot be reached');
  }
  const value = await res.json().catch(() => undefined);
  if (res.ok) return value;
  const err = value?.error ?? { code: 'internal', message: `${res.status} ${res.statusText}` };
  if (res.status === 401 && path !== '/api/login') onLoggedOut();
  throw new ApiError(res.status, err.code, err.message);
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body);
