import t from 'tap';
import { AdminAuth } from '../../src/api/http/admin/admin-auth.js';
import { LoginSessions } from '../../src/api/http/admin/login-sessions.js';
import { LoginThrottle } from '../../src/api/http/admin/login-throttle.js';
import type { CredentialStore, PasswordHasher } from '../../src/ports/admin-credentials.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { MemoryLogger } from '../fakes/memory-logger.js';

/** Reversible on purpose: these tests are about the rules around the hash, not the hash. */
const hasher: PasswordHasher = {
  hash: async (pw) => `plain:${pw}`,
  verify: async (pw, stored) => stored === `plain:${pw}`,
};

class MemoryStore implements CredentialStore {
  record: string | undefined;
  saves = 0;
  async load() {
    return this.record;
  }
  async save(record: string) {
    this.saves++;
    this.record = record;
  }
}

function setup(record?: string) {
  const clock = new FakeClock();
  const store = new MemoryStore();
  store.record = record;
  const logger = new MemoryLogger();
  let n = 0;
  const sessions = new LoginSessions(clock, () => `s${++n}`, { idleMs: 60_000 });
  const auth = new AdminAuth({ hasher, store, sessions, throttle: new LoginThrottle(clock), logger });
  return { auth, store, logger, sessions, clock };
}

const GOOD = 'a good long password';

t.test('first use: the password is set (hashed), and that visitor is logged in', async (t) => {
  const { auth, store, logger, sessions } = setup();
  t.equal(await auth.passwordSet(), false);
  const s = await auth.setup(GOOD, GOOD, '192.0.2.1');
  t.equal(store.record, `plain:${GOOD}`, 'the store holds what the hasher made');
  t.equal(await auth.passwordSet(), true);
  t.equal(sessions.use(s.id), s);
  t.same(
    logger.records.map((r) => [r.event, r.fields['address']]),
    [
      ['admin-password-set', '192.0.2.1'],
      ['admin-login', '192.0.2.1'],
    ],
  );
});

t.test('set-up is refused once a password exists, and when two visitors race, one wins', async (t) => {
  const { auth, store } = setup();
  const results = await Promise.allSettled([auth.setup(GOOD, GOOD, 'a'), auth.setup('another long one', 'another long one', 'b')]);
  t.same(
    results.map((r) => r.status),
    ['fulfilled', 'rejected'],
  );
  t.match((results[1] as PromiseRejectedResult).reason, { code: 'conflict', message: /already set/ });
  t.equal(store.saves, 1);
  t.equal(store.record, `plain:${GOOD}`);
});

t.test('a bad new password is refused and nothing is stored', async (t) => {
  const { auth, store } = setup();
  await t.rejects(auth.setup('short', 'short', 'a'), { code: 'invalid-argument', message: /too short/ });
  await t.rejects(auth.setup(GOOD, `${GOOD}.`, 'a'), { code: 'invalid-argument', message: /differ/ });
  t.equal(store.saves, 0);
});

t.test('login: the right password logs in; a wrong one is refused and logged; before set-up there is nothing to log into', async (t) => {
  const fresh = setup();
  await t.rejects(fresh.auth.login(GOOD, 'a'), { code: 'conflict', message: /set one first/ });
  const { auth, logger } = setup(`plain:${GOOD}`);
  await t.rejects(auth.login('wrong password', '192.0.2.7'), { code: 'access-denied', message: 'wrong password' });
  t.match(logger.find('admin-login-failed'), [{ level: 'warning', fields: { address: '192.0.2.7', reason: 'wrong-password' } }]);
  const s = await auth.login(GOOD, '192.0.2.7');
  t.ok(s.id);
  t.equal(logger.find('admin-login').length, 1, 'logged once');
});

t.test('login: after five wrong passwords the client waits, even with the right one', async (t) => {
  const { auth, logger, clock } = setup(`plain:${GOOD}`);
  for (let i = 0; i < 6; i++) await t.rejects(auth.login('nope', '192.0.2.8'), { message: 'wrong password' });
  await t.rejects(auth.login(GOOD, '192.0.2.8'), { code: 'access-denied', retryable: true, message: /try again in 30 s/ });
  t.equal(logger.find('admin-login-failed').at(-1)?.fields['reason'], 'throttled');
  t.ok(await auth.login(GOOD, '192.0.2.99'), 'another client is not held up');
  clock.advance(30_000);
  t.ok(await auth.login(GOOD, '192.0.2.8'), 'after the wait, the right password works');
});

t.test('a new password needs the current one; every other login ends', async (t) => {
  const { auth, store, sessions, logger } = setup(`plain:${GOOD}`);
  const mine = await auth.login(GOOD, 'a');
  const other = await auth.login(GOOD, 'b');
  await t.rejects(auth.change(mine, 'not it', 'new long password', 'new long password', 'a'), { code: 'access-denied', message: /current password is wrong/ });
  await t.rejects(auth.change(mine, GOOD, 'tiny', 'tiny', 'a'), { code: 'invalid-argument' });
  t.equal(store.record, `plain:${GOOD}`, 'nothing changed yet');
  await auth.change(mine, GOOD, 'new long password', 'new long password', 'a');
  t.equal(store.record, 'plain:new long password');
  t.ok(sessions.use(mine.id), 'this login goes on');
  t.equal(sessions.use(other.id), undefined, 'the other one ended');
  t.equal(logger.find('admin-password-changed').length, 1);
});

t.test('logout ends the login and says so', async (t) => {
  const { auth, sessions, logger } = setup(`plain:${GOOD}`);
  const s = await auth.login(GOOD, 'a');
  auth.logout(s);
  t.equal(sessions.use(s.id), undefined);
  t.equal(logger.find('admin-logout').length, 1);
});
