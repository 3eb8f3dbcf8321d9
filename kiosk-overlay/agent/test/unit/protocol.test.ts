import t from 'tap';
import { backoffS, isTransient, parseServerLine, stationLines, V0_CONNECT_NOW } from '../../src/domain/protocol.js';

const unknown = (line: string) => ({ kind: 'unknown', line });

/** A line as an assertion's name: control and non-ASCII characters escaped (U+2028 would break the TAP output). */
const show = (line: string) => JSON.stringify(line).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

const READY = 'READY session=S-1 vm=tabula-linux-0 host=169.254.24.1 port=5906 ticket=Tk_9-x expires=10';

t.test('WELCOME: the pools offered, with how many are ready, and the default', async (t) => {
  t.same(parseServerLine('WELCOME version=1 pools=desktop:3/4,linux:1/2 default=desktop'), {
    kind: 'welcome',
    pools: [
      { name: 'desktop', ready: 3, size: 4 },
      { name: 'linux', ready: 1, size: 2 },
    ],
    defaultPool: 'desktop',
  });
  t.same(parseServerLine('WELCOME version=1 pools=linux:0/2'), { kind: 'welcome', pools: [{ name: 'linux', ready: 0, size: 2 }], defaultPool: 'linux' }, 'no default: the first pool');
  t.same(parseServerLine('WELCOME version=1 pools=a.b_c-1:0/0 default=x'), { kind: 'welcome', pools: [{ name: 'a.b_c-1', ready: 0, size: 0 }], defaultPool: 'x' });
  t.same(parseServerLine('WELCOME version=1 pools='), { kind: 'welcome', pools: [], defaultPool: '' }, 'a server without pools');
  t.same(parseServerLine('WELCOME version=1 pools=linux:1/2 future=field'), { kind: 'welcome', pools: [{ name: 'linux', ready: 1, size: 2 }], defaultPool: 'linux' }, 'unknown fields are ignored');
});

t.test('WELCOME whose pools do not match NAME:CLEAN/SIZE is unknown', async (t) => {
  for (const pools of ['desktop', 'desktop:3', 'desktop:3/', 'desktop:a/4', ':3/4', 'desk top:3/4', 'desktop:3/4,', 'desktop:3/4,,linux:1/2', 'd!:1/2', `${'p'.repeat(33)}:1/2`, 'desktop:-1/4']) {
    const line = `WELCOME version=1 pools=${pools} default=desktop`;
    t.same(parseServerLine(line), unknown(line), pools);
  }
  t.same(parseServerLine('WELCOME version=1'), unknown('WELCOME version=1'), 'no pools at all');
  t.same(parseServerLine(`WELCOME pools=${'p'.repeat(32)}:1/2`).kind, 'welcome', 'a 32-character pool name is fine');
});

t.test('QUEUED: the place in the queue', async (t) => {
  t.same(parseServerLine('QUEUED position=1'), { kind: 'queued', position: 1 });
  t.same(parseServerLine('QUEUED position=0'), { kind: 'queued', position: 0 });
  for (const line of ['QUEUED', 'QUEUED position=', 'QUEUED position=-1', 'QUEUED position=1.5', 'QUEUED position=x', 'QUEUED position=1234567890']) {
    t.same(parseServerLine(line), unknown(line), line);
  }
});

t.test('READY with all its fields', async (t) => {
  t.same(parseServerLine(READY), { kind: 'ready', session: 'S-1', vm: 'tabula-linux-0', host: '169.254.24.1', port: 5906, ticket: 'Tk_9-x', expiresS: 10 });
  t.same(parseServerLine('READY session=S vm=v host=h port=1 ticket=T expires=30'), { kind: 'ready', session: 'S', vm: 'v', host: 'h', port: 1, ticket: 'T', expiresS: 30 });
  t.same(parseServerLine('READY session=S vm=v host=h port=65535 ticket=T').kind, 'ready', 'the highest port');
  t.equal((parseServerLine('READY session=S vm=v host=h port=5906 ticket=T') as { expiresS: number }).expiresS, 10, 'no expires: 10 s');
  t.equal((parseServerLine('READY session=S vm=v host=h port=5906 ticket=T expires=soon') as { expiresS: number }).expiresS, 10, 'a bad expires: 10 s');
  // The server's tickets are base64url; any printable ASCII without spaces is accepted, '=' included.
  t.equal((parseServerLine('READY session=S vm=v host=h port=5906 ticket=a+b/c== expires=10') as { ticket: string }).ticket, 'a+b/c==');
  t.equal((parseServerLine(`READY session=S vm=v host=h port=5906 ticket=${'x'.repeat(128)}`) as { ticket: string }).ticket.length, 128);
  t.equal((parseServerLine('READY session=S vm=v host=fe80::1 port=5906 ticket=T') as { host: string }).host, 'fe80::1', 'an IPv6 host');
  t.same(parseServerLine('READY ticket=T port=5906 host=h vm=v session=S').kind, 'ready', 'fields in any order');
});

t.test('READY without a ticket: a pool whose consoles take none (shared with v0 stations)', async (t) => {
  t.same(parseServerLine('READY session=S vm=v host=h port=5906 expires=10'), { kind: 'ready', session: 'S', vm: 'v', host: 'h', port: 5906, expiresS: 10 });
  t.notOk('ticket' in parseServerLine('READY session=S vm=v host=h port=5906'), 'no ticket field at all, so no password goes to the viewer');
});

t.test('READY that is missing something or carries something unsafe is unknown', async (t) => {
  const bad = [
    'READY session=S vm=v host=h port=5906 ticket=',
    'READY vm=v host=h port=5906 ticket=T',
    'READY session=S host=h port=5906 ticket=T',
    'READY session=S vm=v port=5906 ticket=T',
    'READY session=S vm=v host=h ticket=T',
    'READY session=S vm=v host=h port=0 ticket=T',
    'READY session=S vm=v host=h port=65536 ticket=T',
    'READY session=S vm=v host=h port=99999 ticket=T',
    'READY session=S vm=v host=h port=-1 ticket=T',
    'READY session=S vm=v host=h port=59x6 ticket=T',
    // What goes into the viewer's arguments and the ticket file must be a plain token.
    'READY session=S vm=v host=h port=5906 ticket=ab\rcd',
    'READY session=S vm=v host=h port=5906 ticket=ab\ncd',
    'READY session=S vm=v host=h port=5906 ticket=ab\tcd',
    'READY session=S vm=v host=h port=5906 ticket=ab\u2028cd',
    'READY session=S vm=v host=h port=5906 ticket=ab\u0085cd',
    'READY session=S vm=v host=h port=5906 ticket=ab\x7fcd',
    'READY session=S vm=v host=h port=5906 ticket=päss',
    `READY session=S vm=v host=h port=5906 ticket=${'x'.repeat(129)}`,
    'READY session=S vm=v host=-e/bin/sh port=5906 ticket=T',
    'READY session=S vm=v host=h;reboot port=5906 ticket=T',
    'READY session=S/../x vm=v host=h port=5906 ticket=T',
    `READY session=${'s'.repeat(65)} vm=v host=h port=5906 ticket=T`,
  ];
  for (const line of bad) t.same(parseServerLine(line), unknown(line), show(line));
});

t.test('READY whose ticket has a space in it is not taken for a shorter ticket', async (t) => {
  const line = 'READY session=S vm=v host=h port=5906 ticket=ab cd expires=10';
  t.same(parseServerLine(line), unknown(line));
});

t.test('CONNECTED, WARN, ENDED', async (t) => {
  t.same(parseServerLine('CONNECTED session=S-1'), { kind: 'connected', session: 'S-1' });
  t.same(parseServerLine('CONNECTED'), unknown('CONNECTED'));
  t.same(parseServerLine('WARN session=S reason=idle seconds=60'), { kind: 'warn', session: 'S', reason: 'idle', seconds: 60 });
  t.same(parseServerLine('WARN session=S reason=time-limit seconds=0'), { kind: 'warn', session: 'S', reason: 'time-limit', seconds: 0 });
  t.same(parseServerLine('WARN session=S reason=none'), { kind: 'warn', session: 'S', reason: 'none', seconds: 0 }, 'the countdown is off');
  t.same(parseServerLine('WARN session=S reason=idle'), { kind: 'warn', session: 'S', reason: 'idle', seconds: 0 });
  t.same(parseServerLine('WARN reason=idle seconds=60'), unknown('WARN reason=idle seconds=60'));
  t.same(parseServerLine('WARN session=S seconds=60'), unknown('WARN session=S seconds=60'));
  for (const reason of ['disconnected', 'shutdown', 'station', 'not-connected', 'idle', 'time-limit', 'admin', 'wipe', 'error']) {
    t.same(parseServerLine(`ENDED session=S reason=${reason}`), { kind: 'ended', session: 'S', reason });
  }
  t.same(parseServerLine('ENDED session=S'), { kind: 'ended', session: 'S', reason: 'unknown' });
  t.same(parseServerLine('ENDED reason=idle'), unknown('ENDED reason=idle'));
});

t.test('PING, PONG', async (t) => {
  t.same(parseServerLine('PING'), { kind: 'ping' });
  t.same(parseServerLine('PONG'), { kind: 'pong' });
  t.same(parseServerLine('PING extra=1'), { kind: 'ping' }, 'unknown fields are ignored');
});

t.test('ERR: code, reason and detail', async (t) => {
  t.same(parseServerLine('ERR 400 bad-request expected TABULA/<version> or nothing'), { kind: 'error', status: 400, reason: 'bad-request', detail: 'expected TABULA/<version> or nothing' });
  t.same(parseServerLine('ERR 409 wrong-state a session is under way'), { kind: 'error', status: 409, reason: 'wrong-state', detail: 'a session is under way' });
  t.same(parseServerLine('ERR 503 try-again'), { kind: 'error', status: 503, reason: 'try-again', detail: '' });
  t.same(parseServerLine('ERR 404 no-such-pool'), { kind: 'error', status: 404, reason: 'no-such-pool', detail: '' });
  t.same(parseServerLine('ERR 505 unsupported-version 1 (this server speaks v0 and v1)'), { kind: 'error', status: 505, reason: 'unsupported-version', detail: '1 (this server speaks v0 and v1)' });
  t.same(parseServerLine('ERR 500'), { kind: 'error', status: 500, reason: '', detail: '' });
  t.same(parseServerLine('ERR'), unknown('ERR'));
  t.same(parseServerLine('ERR busy'), unknown('ERR busy'));
});

t.test("the v0 server's line", async (t) => {
  t.equal(V0_CONNECT_NOW, 'RULE ADDED, CONNECT NOW');
  t.same(parseServerLine('RULE ADDED, CONNECT NOW'), { kind: 'v0-connect-now' });
  // The original stations matched *"RULE ADDED, CONNECT NOW"*: so does the agent.
  t.same(parseServerLine('>> RULE ADDED, CONNECT NOW <<'), { kind: 'v0-connect-now' });
  t.same(parseServerLine('RULE ADDED'), unknown('RULE ADDED'));
  t.same(parseServerLine('rule added, connect now'), unknown('rule added, connect now'));
});

t.test('anything else is unknown', async (t) => {
  for (const line of ['', ' ', 'HELLO', 'welcome version=1 pools=a:1/1', ' PING', 'TABULA/1 HELLO station=x', 'READY', 'QUEUED=1']) {
    t.same(parseServerLine(line), unknown(line), show(line));
  }
});

t.test("the station's lines", async (t) => {
  t.equal(stationLines.hello('kiosk-3'), 'TABULA/1 HELLO station=kiosk-3');
  t.equal(stationLines.request('linux'), 'REQUEST pool=linux');
  t.equal(stationLines.request(''), 'REQUEST', 'no pool: the default');
  t.equal(stationLines.resume('S-1'), 'RESUME session=S-1');
  t.equal(stationLines.input(), 'INPUT');
  t.equal(stationLines.end(), 'END');
  t.equal(stationLines.ping(), 'PING');
  t.equal(stationLines.pong(), 'PONG');
});

t.test('isTransient: ask again later, or give up', async (t) => {
  t.ok(isTransient(503, 'try-again'));
  t.ok(isTransient(503, 'busy'));
  t.ok(isTransient(503, 'not-found'));
  t.ok(isTransient(408, 'request-timeout'));
  t.ok(isTransient(429, 'too-many-connections'));
  t.notOk(isTransient(429, 'already-waiting'));
  t.notOk(isTransient(400, 'bad-request'));
  t.notOk(isTransient(404, 'no-such-pool'));
  t.notOk(isTransient(404, 'no-such-session'));
  t.notOk(isTransient(409, 'wrong-state'));
  t.notOk(isTransient(413, 'line-too-long'));
  t.notOk(isTransient(426, 'ticket-required'));
  t.notOk(isTransient(505, 'unsupported-version'));
});

t.test('backoffS doubles from the minimum and stops at the maximum', async (t) => {
  t.same(
    [0, 1, 2, 3, 4, 5, 6].map((a) => backoffS(a, 1, 30)),
    [1, 2, 4, 8, 16, 30, 30],
  );
  t.same(
    [0, 1, 2].map((a) => backoffS(a, 5, 12)),
    [5, 10, 12],
  );
  t.equal(backoffS(0, 7, 7), 7, 'min = max');
  t.equal(backoffS(-3, 2, 30), 2, 'a negative attempt counts as the first');
  t.equal(backoffS(1000, 1, 3600), 3600, 'a huge attempt is capped, not Infinity');
  t.equal(backoffS(1000, 1, Number.MAX_SAFE_INTEGER), 65536, 'the exponent itself is capped');
  let last = 0;
  for (let a = 0; a < 40; a++) {
    const s = backoffS(a, 1, 30);
    if (s < last) t.fail(`attempt ${a}: ${s} after ${last}`);
    last = s;
  }
  t.equal(last, 30, 'never shrinks, ends at the maximum');
});
