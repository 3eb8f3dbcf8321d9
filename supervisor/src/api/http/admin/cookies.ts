/** The login cookie's name. */
export const SESSION_COOKIE = 'tabula_admin';

/**
 * The login cookie: script cannot read it (HttpOnly), no other site's page
 * makes the browser send it (SameSite=Strict), and over HTTPS it never
 * travels in the clear (Secure; the loopback HTTP port for development
 * cannot have that).
 */
export function sessionCookie(id: string, maxAgeMs: number, secure: boolean): string {
  return [`${SESSION_COOKIE}=${id}`, 'Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${Math.floor(maxAgeMs / 1000)}`, ...(secure ? ['Secure'] : [])].join('; ');
}

/** Tells the browser to forget the login cookie. */
export function clearedCookie(secure: boolean): string {
  return sessionCookie('', 0, secure);
}

/** The value of cookie `name` in a Cookie header, if there. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}
