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

/**
 * Sends a file as the body of a POST (application/octet-stream), for the image
 * upload: XMLHttpRequest, because fetch tells nothing of an upload's progress.
 * `onProgress(sent, total)` follows the bytes; resolves with the JSON answer.
 */
export function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('X-Tabula-CSRF', csrf);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.responseType = 'json';
    xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded, e.total || file.size));
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr.response);
      const err = xhr.response?.error ?? { code: 'internal', message: `${xhr.status} ${xhr.statusText}` };
      if (xhr.status === 401) onLoggedOut();
      reject(new ApiError(xhr.status, err.code, err.message));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'unreachable', 'the upload was cut off: the connection to the supervisor broke (nothing of it is kept)')));
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'cancelled', 'the upload was cancelled (nothing of it is kept)')));
    xhr.send(file);
  });
}
