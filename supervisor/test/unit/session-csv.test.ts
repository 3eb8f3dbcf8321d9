import t from 'tap';
import type { SessionLogEntry } from '../../src/domain/session-log.js';
import { renderSessionsCsv } from '../../src/render/session-csv.js';

const HEADER = 'session,station_address,station_mac,station_name,pool,vm,protocol,requested,handed,connected,ended,reason,wait_s,connect_s,session_s';
const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 0);

const FULL: SessionLogEntry = {
  session: 's-1',
  station: { address: '10.0.0.7', mac: '52:54:00:aa:bb:cc', name: 'kiosk-3' },
  pool: 'desk',
  vm: 'tabula-desk-0',
  protocol: 'v1',
  requestedAt: T0,
  handedAt: T0 + 1500,
  connectedAt: T0 + 2250,
  endedAt: T0 + 62_251,
  reason: 'idle',
};

t.test('no entries: only the header', async (t) => {
  t.equal(renderSessionsCsv([]), `${HEADER}\n`);
});

t.test('a full entry: ISO times in UTC and durations in seconds with 3 decimals', async (t) => {
  const lines = renderSessionsCsv([FULL]).split('\n');
  t.same(lines, [
    HEADER,
    's-1,10.0.0.7,52:54:00:aa:bb:cc,kiosk-3,desk,tabula-desk-0,v1,2025-01-02T03:04:05.000Z,2025-01-02T03:04:06.500Z,2025-01-02T03:04:07.250Z,2025-01-02T03:05:07.251Z,idle,1.500,0.750,60.001',
    '',
  ]);
});

t.test('what is not known is an empty field', async (t) => {
  const bare: SessionLogEntry = { session: 's-2', station: { address: '10.0.0.8' }, pool: 'desk', vm: 'tabula-desk-1', protocol: 'v0', handedAt: T0, endedAt: T0 + 5000, reason: 'not-taken' };
  const [, row] = renderSessionsCsv([bare]).split('\n');
  t.equal(row, 's-2,10.0.0.8,,,desk,tabula-desk-1,v0,,2025-01-02T03:04:05.000Z,,2025-01-02T03:04:10.000Z,not-taken,,,');
  t.equal(row?.split(',').length, 15, 'every row has every column');
});

t.test('fields with a comma, quote, CR or LF are quoted, quotes doubled (RFC 4180)', async (t) => {
  const odd: SessionLogEntry = { ...FULL, station: { address: '10.0.0.7', name: 'a,b' }, reason: 'said "bye"\r\nthen left', pool: 'plain' };
  const out = renderSessionsCsv([odd]);
  t.match(out, /,"a,b",plain,/);
  t.match(out, /,"said ""bye""\r\nthen left",/);
});

t.test('rows follow the order given, lines end in "\\n" only', async (t) => {
  const out = renderSessionsCsv([{ ...FULL, session: 'b' }, { ...FULL, session: 'a' }]);
  t.same(out.split('\n').slice(1, 3).map((l) => l.split(',')[0]), ['b', 'a']);
  t.notOk(out.includes('\r'), 'no CR anywhere');
  t.ok(out.endsWith('\n'));
});

t.test('durations never go negative when clocks disagree', async (t) => {
  const skewed: SessionLogEntry = { ...FULL, requestedAt: T0 + 10_000, connectedAt: T0 + 1000 };
  const cols = renderSessionsCsv([skewed]).split('\n')[1]?.split(',') ?? [];
  t.same(cols.slice(12), ['0.000', '0.000', '61.251']);
});
