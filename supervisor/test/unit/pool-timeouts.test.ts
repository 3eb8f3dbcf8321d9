import dbus from 'dbus-next';
import t from 'tap';
import { timeoutsOfDict, timeoutsOfProps, timeoutProps } from '../../src/api/dbus/timeouts.js';
import { overviewOf } from '../../src/api/http/admin/views.js';
import { parseCommandLine } from '../../src/cli/commands.js';
import { formatTimeouts, timeoutChanges } from '../../src/cli/timeouts.js';
import { parseConfig, timeoutsOf, withPoolTimeouts } from '../../src/config/config.js';
import { isPoolOverrides, judgeOverrides, withTimeoutChanges } from '../../src/domain/pool-overrides.js';
import { checkTimeouts, TIMEOUT_BOUNDS, TIMEOUT_KEYS, timeoutProblem, type PoolTimeouts } from '../../src/domain/pool-timeouts.js';

const pool = (extra = '') => `[[pool]]\nname = "desk"\ngolden_image = "/srv/g.qcow2"\nsize = 1\n${extra}\n`;
const FILE: PoolTimeouts = { idle_timeout: 300, max_session: 14_400, session_warning: 60, boot_timeout: 180 };

t.test('the bounds are the config file\'s: what the file refuses, staff\'s changes refuse, and the other way round', async (t) => {
  for (const key of TIMEOUT_KEYS) {
    const { min, max, aboveMin } = TIMEOUT_BOUNDS[key];
    const lowest = aboveMin ? min + 0.5 : min;
    for (const [value, ok] of [[lowest, true], [max, true], [max + 1, false], [aboveMin ? min : min - 1, false]] as const) {
      const fileOk = (() => {
        try {
          parseConfig(pool(`${key} = ${value}`), 'unit.toml');
          return true;
        } catch {
          return false;
        }
      })();
      t.equal(fileOk, ok, `the file ${ok ? 'takes' : 'refuses'} ${key} = ${value}`);
      t.equal(timeoutProblem(key, value) === undefined, ok, `and so does a change`);
    }
  }
});

t.test('checkTimeouts: a subset, each named with its bounds when refused; every problem at once', async (t) => {
  t.same(checkTimeouts({ idle_timeout: 0, boot_timeout: 0.5 }), { idle_timeout: 0, boot_timeout: 0.5 });
  t.throws(() => checkTimeouts({ idle_timeout: 99_999 }), { code: 'invalid-argument', message: 'idle_timeout must be from 0 to 86400 seconds (0: never), not 99999' });
  t.throws(() => checkTimeouts({ boot_timeout: 0 }), { message: 'boot_timeout must be more than 0 and at most 86400 seconds, not 0' });
  t.throws(() => checkTimeouts({ max_session: Number.NaN }), { message: /^max_session must be a number of seconds, from 0 to 604800 seconds \(0: no limit\)$/ });
  t.throws(() => checkTimeouts({ session_warning: 4000, bogus: 1 }), { message: /session_warning must be from 0 to 3600 seconds \(0: no warning\), not 4000; unknown timeout "bogus"/ });
  t.throws(() => checkTimeouts({}), { message: /no timeout given/ });
  t.same(checkTimeouts({ session_warning: 600, max_session: 300 }), { session_warning: 600, max_session: 300 }, 'no rule between keys, as in the file');
});

t.test('a pool\'s timeouts in seconds, and the config with some changed', async (t) => {
  const c = parseConfig(`[supervisor]\nboot_timeout = 45\n${pool('idle_timeout = 120')}`, 'unit.toml');
  const desk = c.pools[0];
  t.same(desk && timeoutsOf(desk), { idle_timeout: 120, max_session: 14_400, session_warning: 60, boot_timeout: 45 }, "boot_timeout from [supervisor]");
  const changed = withPoolTimeouts(c, 'desk', { idle_timeout: 600, boot_timeout: 30 });
  t.same(changed.pools[0]?.limits, { idleTimeoutMs: 600_000, maxSessionMs: 14_400_000, warnBeforeMs: 60_000 });
  t.equal(changed.pools[0]?.bootTimeoutMs, 30_000);
  t.ok(Object.isFrozen(changed.pools[0]), 'frozen, as a parsed config');
  t.throws(() => withPoolTimeouts(c, 'nope', { idle_timeout: 1 }), { code: 'not-found' });
});

t.test('stored timeouts: kept while the file\'s value is the one they were set from; a value back to the file\'s is forgotten', async (t) => {
  const set = withTimeoutChanges({}, { idle_timeout: 600, max_session: 14_400 }, FILE);
  t.same(set, { idle_timeout: { seconds: 600, configSeconds: 300 } }, "max_session is the file's: nothing to remember");
  t.same(withTimeoutChanges(set, { idle_timeout: 300 }, FILE), {}, 'back to the file');
  const stored = { desk: { drained: true, timeouts: { ...set, boot_timeout: { seconds: 60, configSeconds: 180 } } }, gone: { timeouts: set } };
  const same = judgeOverrides(new Map([['desk', 1]]), stored, new Map(), new Map([['desk', FILE]]));
  t.same(same.kept, { desk: stored.desk }, 'the file unchanged: all kept');
  t.same(same.dropped.map((d) => `${d.pool} ${d.what}`), ['gone idle_timeout'], 'a pool no longer configured loses them');
  const edited = judgeOverrides(new Map([['desk', 1]]), stored, new Map(), new Map([['desk', { ...FILE, idle_timeout: 900 }]]));
  t.same(edited.kept, { desk: { drained: true, timeouts: { boot_timeout: { seconds: 60, configSeconds: 180 } } } }, 'the edited key goes, the other stays');
  t.match(edited.dropped, [{ pool: 'desk', what: 'idle_timeout', why: "the config file's idle_timeout changed to 900 since it was set" }, { pool: 'gone' }]);
});

t.test('pools.json with timeouts: known keys within their bounds only', async (t) => {
  t.ok(isPoolOverrides({ desk: { timeouts: { idle_timeout: { seconds: 600, configSeconds: 300 } } } }));
  t.notOk(isPoolOverrides({ desk: { timeouts: { idle_timeout: { seconds: -1, configSeconds: 300 } } } }), 'out of bounds');
  t.notOk(isPoolOverrides({ desk: { timeouts: { idle: { seconds: 1, configSeconds: 300 } } } }), 'unknown key');
  t.notOk(isPoolOverrides({ desk: { timeouts: [] } }));
});

t.test('D-Bus: SetTimeouts takes any numeric variant by its property name; the properties carry the timeouts in force', async (t) => {
  t.same(timeoutsOfDict({ IdleTimeout: new dbus.Variant('u', 600), BootTimeout: new dbus.Variant('d', 0.5), MaxSession: new dbus.Variant('t', 60n) }), { idle_timeout: 600, boot_timeout: 0.5, max_session: 60 });
  t.throws(() => timeoutsOfDict({ Idle: new dbus.Variant('u', 1) }), { code: 'invalid-argument', message: /unknown key "Idle": expected IdleTimeout, MaxSession, SessionWarning, BootTimeout/ });
  t.throws(() => timeoutsOfDict({ IdleTimeout: new dbus.Variant('s', '600') }), { code: 'invalid-argument', message: /IdleTimeout \(idle_timeout\) must be a number of seconds/ });
  const props = timeoutProps(FILE);
  t.same(props, { IdleTimeout: 300, MaxSession: 14_400, SessionWarning: 60, BootTimeout: 180 });
  t.same(timeoutsOfProps(props), FILE, 'and tabulactl reads them back');
  t.equal(timeoutsOfProps({}), undefined, 'from a supervisor without them');
});

t.test('tabulactl timeouts: options checked before the bus; a table of them', async (t) => {
  const parsed = parseCommandLine(['timeouts', 'desk', '--idle', '600', '--boot', '90.5']);
  t.ok(parsed.kind === 'run' && parsed.command.admin);
  t.same(parsed.kind === 'run' && timeoutChanges(parsed.options), { idle_timeout: 600, boot_timeout: 90.5 });
  t.same(timeoutChanges({}), {}, 'no options: show them');
  t.throws(() => timeoutChanges({ '--warning': 'soon' }), { code: 'invalid-argument', message: '--warning must be a number of seconds, not "soon"' });
  t.throws(() => timeoutChanges({ '--max-session': '700000' }), { code: 'invalid-argument', message: /^max_session must be from 0 to 604800 seconds/ });
  t.throws(() => parseCommandLine(['timeouts', 'desk', '--idle']), { message: /--idle needs a value/ });
  const text = formatTimeouts([{ name: 'desk', size: 1, healthy: true, healthReason: '', drained: false, counts: {}, vms: [], timeouts: { ...FILE, idle_timeout: 0 } }]);
  t.equal(text, 'POOL  IDLE  MAX-SESSION  WARNING  BOOT\ndesk  off   14400s       60s      180s\n');
  t.equal(formatTimeouts([{ name: 'old', size: 1, healthy: true, healthReason: '', drained: false, counts: {}, vms: [] }]), '', 'none known: nothing');
});

t.test('the admin page\'s overview has each pool\'s timeouts and what the fields accept', async (t) => {
  const ov = overviewOf({ state: 'ready', reason: '', line: '', pools: [{ name: 'desk', size: 1, counts: { clean: 1, booting: 0, cloning: 0, 'in-use': 0, dirty: 0 }, healthy: true, healthReason: '', drained: false, vms: [], timeouts: FILE }] });
  t.same(ov.pools[0]?.timeouts, FILE);
  t.match(ov.timeoutBounds, { idle_timeout: { min: 0, max: 86_400, text: 'from 0 to 86400 seconds (0: never)' }, boot_timeout: { aboveMin: true, text: 'more than 0 and at most 86400 seconds' } });
});
