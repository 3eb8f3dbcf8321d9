import t from 'tap';
import { DEFAULT_SINCE_MS, filled, flag, matches, objectBody, poolName, sessionFilter, text, wholeNumber } from '../../src/api/http/admin/validate.js';
import { reachedOnStationLan } from '../../src/api/http/admin/station-lan.js';
import type { SessionLogEntry } from '../../src/domain/session-log.js';

t.test('bodies: a JSON object, or nothing', async (t) => {
  t.same(objectBody(''), {});
  t.same(objectBody('{"a":1}'), { a: 1 });
  t.throws(() => objectBody('{a:1}'), { code: 'invalid-argument', message: 'the request body is not valid JSON' });
  t.throws(() => objectBody('[1]'), { message: 'the request body must be a JSON object' });
  t.throws(() => objectBody('null'), { message: 'the request body must be a JSON object' });
});

t.test('fields: each refusal names the field and what is wrong', async (t) => {
  const b = { s: 'x', blank: '  ', n: 3, f: 1.5, yes: true, pool: 'desk', bad: 'Desk!' };
  t.equal(text(b, 's'), 'x');
  t.throws(() => text(b, 'missing'), { message: '"missing" is missing or not a string' });
  t.throws(() => text(b, 'n'), { message: '"n" is missing or not a string' });
  t.throws(() => text({ s: 'abcdef' }, 's', 3), { message: '"s" is too long (at most 3 characters)' });
  t.throws(() => filled(b, 'blank'), { message: '"blank" is empty' });
  t.equal(filled({ e: ' example.org ' }, 'e'), 'example.org');
  t.equal(flag(b, 'yes'), true);
  t.throws(() => flag(b, 's'), { message: '"s" must be true or false' });
  t.equal(wholeNumber(b, 'n', 0, 64), 3);
  t.throws(() => wholeNumber(b, 'f', 0, 64), { message: '"f" must be a whole number' });
  t.throws(() => wholeNumber({ n: 65 }, 'n', 0, 64), { message: '"n" must be between 0 and 64, not 65' });
  t.throws(() => wholeNumber({ n: '3' }, 'n', 0, 64), { message: '"n" must be a whole number' });
  t.equal(poolName(b), 'desk');
  t.throws(() => poolName(b, 'bad'), { code: 'invalid-argument', message: '"bad": "Desk!" is not a pool name' });
});

const NOW = Date.UTC(2030, 5, 1, 12);
const entry = (over: Partial<SessionLogEntry>): SessionLogEntry => ({
  session: 's',
  station: { address: '169.254.24.10', name: 'kiosk-hall', mac: '52:54:00:00:00:01' },
  pool: 'desk',
  vm: 'tabula-desk-0',
  protocol: 'v1',
  handedAt: NOW - 5000,
  endedAt: NOW - 1000,
  reason: 'idle',
  ...over,
});

t.test('the sessions filter: defaults to the last day; each field checked', async (t) => {
  t.same(sessionFilter(new URLSearchParams(''), NOW), { since: NOW - DEFAULT_SINCE_MS });
  t.same(sessionFilter(new URLSearchParams('since=5&pool=desk&station=%20hall%20&reason=time-limit'), NOW), { since: 5, pool: 'desk', station: 'hall', reason: 'time-limit' });
  t.throws(() => sessionFilter(new URLSearchParams('since=yesterday'), NOW), { code: 'invalid-argument', message: /since: "yesterday" is not a time/ });
  t.throws(() => sessionFilter(new URLSearchParams('pool=../etc'), NOW), { message: /pool: "..\/etc" is not a pool name/ });
  t.throws(() => sessionFilter(new URLSearchParams('reason=DROP TABLE'), NOW), { message: /reason: "DROP TABLE" is not a reason/ });
  t.throws(() => sessionFilter(new URLSearchParams(`station=${'x'.repeat(65)}`), NOW), { message: 'station: at most 64 characters' });
});

t.test('the sessions filter matches on time, pool, reason, and a part of the station', async (t) => {
  const all = { since: 0 };
  t.ok(matches(entry({}), all));
  t.notOk(matches(entry({ endedAt: 10 }), { since: 11 }), 'ended before since');
  t.notOk(matches(entry({}), { since: 0, pool: 'lab' }));
  t.notOk(matches(entry({}), { since: 0, reason: 'admin' }));
  t.ok(matches(entry({}), { since: 0, station: 'HALL' }), 'by name, any case');
  t.ok(matches(entry({}), { since: 0, station: '24.10' }), 'by address');
  t.ok(matches(entry({}), { since: 0, station: '00:01' }), 'by MAC');
  t.notOk(matches(entry({}), { since: 0, station: 'lobby' }));
});

t.test('a connection to the station LAN address is recognised, also as IPv4-mapped IPv6', async (t) => {
  t.ok(reachedOnStationLan('169.254.24.1', '169.254.24.1'));
  t.ok(reachedOnStationLan('::ffff:169.254.24.1', '169.254.24.1'));
  t.notOk(reachedOnStationLan('10.0.0.5', '169.254.24.1'));
  t.notOk(reachedOnStationLan('::ffff:169.254.24.10', '169.254.24.1'));
  t.notOk(reachedOnStationLan('169.254.24.1', undefined), 'no station LAN: nothing to refuse');
});
