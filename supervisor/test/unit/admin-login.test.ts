import t from 'tap';
import { clearedCookie, cookieValue, SESSION_COOKIE, sessionCookie } from '../../src/api/http/admin/cookies.js';
import { LoginSessions, sameSecret } from '../../src/api/http/admin/login-sessions.js';
import { LoginThrottle, throttleKey } from '../../src/api/http/admin/login-throttle.js';
import { FakeClock } from '../fakes/fake-clock.js';

const MIN = 60_000;

function counter(): () => string {
  let n = 0;
  return () => `secret${++n}`;
}

t.test('a login lasts while it is used, and ends after the idle time', async (t) => {
  const clock = new FakeClock();
  const sessions = new LoginSessions(clock, counter(), { idleMs: 30 * MIN });
  const s = sessions.create('192.0.2.5');
  t.not(s.id, s.csrf, 'the cookie and the CSRF token are different secrets');
  clock.advance(29 * MIN);
  t.equal(sessions.use(s.id), s, 'used within the idle time');
  clock.advance(29 * MIN);
  t.equal(sessions.use(s.id), s, 'each use restarts the idle time');
  clock.advance(30 * MIN);
  t.equal(sessions.use(s.id), undefined, 'idle for 30 minutes: gone');
  t.equal(sessions.use(s.id), undefined, 'and stays gone');
});

t.test('peeking does not keep a login alive (an open event stream is nobody at the keyboard)', async (t) => {
  const clock = new FakeClock();
  const sessions = new LoginSessions(clock, counter(), { idleMs: 10 * MIN });
  const s = sessions.create('192.0.2.5');
  for (let i = 0; i < 9; i++) {
    clock.advance(MIN);
    t.ok(sessions.peek(s.id));
  }
  clock.advance(MIN);
  t.equal(sessions.peek(s.id), undefined);
});

t.test('however busy, a login ends at its maximum age', async (t) => {
  const clock = new FakeClock();
  const sessions = new LoginSessions(clock, counter(), { idleMs: 30 * MIN, maxAgeMs: 60 * MIN });
  const s = sessions.create('192.0.2.5');
  for (let i = 0; i < 5; i++) {
    clock.advance(10 * MIN);
    t.ok(sessions.use(s.id));
  }
  clock.advance(10 * MIN);
  t.equal(sessions.use(s.id), undefined);
});

t.test('logout ends one login; a password change ends all but one; the oldest goes when full', async (t) => {
  const clock = new FakeClock();
  const sessions = new LoginSessions(clock, counter(), { idleMs: MIN * 30, max: 3 });
  const [a, b, c] = [sessions.create('a'), sessions.create('b'), sessions.create('c')];
  sessions.end(a.id);
  t.equal(sessions.use(a.id), undefined);
  t.ok(sessions.use(b.id));
  sessions.endOthers(c.id);
  t.equal(sessions.use(b.id), undefined);
  t.ok(sessions.use(c.id));
  const more = [sessions.create('d'), sessions.create('e'), sessions.create('f')];
  t.equal(sessions.use(c.id), undefined, 'the oldest made room');
  t.ok(more.every((s) => sessions.use(s.id)));
  t.equal(sessions.use(undefined), undefined);
});

t.test('CSRF tokens compare equal only when equal', async (t) => {
  t.ok(sameSecret('abcdef', 'abcdef'));
  t.notOk(sameSecret('abcdef', 'abcdeF'));
  t.notOk(sameSecret('abcdef', 'abcde'));
  t.notOk(sameSecret('', 'abcdef'));
  t.notOk(sameSecret('abcdef', ''));
  t.ok(sameSecret('', ''));
});

t.test('the login cookie: HttpOnly, SameSite=Strict, expiring, Secure over HTTPS only', async (t) => {
  const https = sessionCookie('ID', 12 * 3600_000, true);
  t.equal(https, `${SESSION_COOKIE}=ID; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200; Secure`);
  t.notMatch(sessionCookie('ID', 1000, false), /Secure/);
  t.match(clearedCookie(true), /=; .*Max-Age=0/);
  t.equal(cookieValue(`theme=dark; ${SESSION_COOKIE}=abc=; other=1`, SESSION_COOKIE), 'abc=');
  t.equal(cookieValue('x_tabula_admin=evil', SESSION_COOKIE), undefined, 'a longer name is another cookie');
  t.equal(cookieValue(undefined, SESSION_COOKIE), undefined);
});

t.test('login throttle: five wrong passwords are free, then waits that double up to a ceiling', async (t) => {
  const clock = new FakeClock();
  const throttle = new LoginThrottle(clock);
  const ip = '192.0.2.9';
  for (let i = 0; i < 5; i++) {
    throttle.failed(ip);
    t.equal(throttle.waitMs(ip), 0, `wrong password ${i + 1}: no wait`);
  }
  throttle.failed(ip);
  t.equal(throttle.waitMs(ip), 30_000, 'the sixth: 30 s');
  clock.advance(30_000);
  t.equal(throttle.waitMs(ip), 0, 'after the wait, one more try');
  throttle.failed(ip);
  t.equal(throttle.waitMs(ip), 60_000, 'which, wrong again, doubles the wait');
  for (let i = 0; i < 10; i++) throttle.failed(ip);
  t.equal(throttle.waitMs(ip), 15 * MIN, 'never more than 15 min');
  t.equal(throttle.waitMs('192.0.2.10'), 0, 'another client is not held up');
  throttle.succeeded(ip);
  t.equal(throttle.waitMs(ip), 0, 'a right password clears the count');
});

t.test('the throttle forgets old failures and tracks a bounded number of clients', async (t) => {
  const clock = new FakeClock();
  const throttle = new LoginThrottle(clock, { freeFailures: 1, firstLockMs: 1000, forgetMs: 60_000, maxTracked: 2 });
  throttle.failed('a');
  clock.advance(60_000);
  throttle.failed('a');
  t.equal(throttle.waitMs('a'), 0, 'a failure a long time ago no longer counts');
  throttle.failed('a');
  t.equal(throttle.waitMs('a'), 1000);
  throttle.failed('b');
  throttle.failed('c');
  t.equal(throttle.waitMs('a'), 0, 'the stalest client was dropped to make room');
});

t.test('IPv6 clients are counted per /64; IPv4-mapped addresses as IPv4', async (t) => {
  t.equal(throttleKey('::ffff:192.0.2.1'), '192.0.2.1');
  t.equal(throttleKey('192.0.2.1'), '192.0.2.1');
  t.equal(throttleKey('2001:db8:1:2::5'), '2001:db8:1:2::/64');
  t.equal(throttleKey('2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64');
  t.equal(throttleKey('2001:db8::1'), '2001:db8:0:0::/64');
  t.equal(throttleKey('::1'), '0:0:0:0::/64');
});
