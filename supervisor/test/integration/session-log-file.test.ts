// The session log on a real file system: durability calls, rotation, and the
// torn last line a power loss can leave. Needs no daemons; everything lives in
// one temporary directory removed at the end.
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { JsonlSessionLog } from '../../src/adapters/jsonl-session-log.js';
import { TabulaError } from '../../src/domain/errors.js';
import type { SessionLogEntry } from '../../src/domain/session-log.js';
import { TEST_PREFIX } from '../helpers/env.js';

const ROOT = await mkdtemp(join(tmpdir(), `tabula-${TEST_PREFIX}-sessionlog-`));
t.teardown(() => rm(ROOT, { recursive: true, force: true }));

const T0 = Date.UTC(2025, 0, 1);
let dirs = 0;
/** A directory of its own for each test, not yet created (the log creates it). */
function freshDir(): string {
  return join(ROOT, `log-${++dirs}`);
}

function entry(n: number, over: Partial<SessionLogEntry> = {}): SessionLogEntry {
  return {
    session: `s-${n}`,
    station: { address: `10.0.0.${n % 250}`, name: `kiosk-${n}` },
    pool: 'desk',
    vm: `tabula-desk-${n % 4}`,
    protocol: 'v1',
    requestedAt: T0 + n * 1000,
    handedAt: T0 + n * 1000 + 100,
    connectedAt: T0 + n * 1000 + 300,
    endedAt: T0 + n * 1000 + 900,
    reason: 'idle',
    ...over,
  };
}

/** A file's lines; a file whose last line is not ended fails the test. */
async function lines(dir: string, file = 'sessions.jsonl'): Promise<string[]> {
  const text = await readFile(join(dir, file), 'utf8');
  if (!text.endsWith('\n')) throw new Error(`${file} does not end with a newline: ${JSON.stringify(text.slice(-40))}`);
  return text.slice(0, -1).split('\n');
}

t.test('append then read gives the entries back; directory and file are private', async (t) => {
  const dir = freshDir();
  const log = new JsonlSessionLog(dir);
  const bare: SessionLogEntry = { session: 's-bare', station: { address: '10.0.0.9' }, pool: 'lab', vm: 'tabula-lab-0', protocol: 'v0', handedAt: T0 + 5000, endedAt: T0 + 6000, reason: 'not-taken' };
  await log.append(entry(1));
  await log.append(entry(2));
  await log.append(bare);
  t.same(await log.read(), [entry(1), entry(2), bare]);
  t.same((await lines(dir)).map((l) => JSON.parse(l) as unknown), [entry(1), entry(2), bare], 'one JSON object per line');
  t.equal((await stat(dir)).mode & 0o777, 0o750);
  t.equal((await stat(join(dir, 'sessions.jsonl'))).mode & 0o777, 0o640);
  t.same(await new JsonlSessionLog(dir).read(), [entry(1), entry(2), bare], 'a new instance reads the same');
});

t.test('read on a log never written is empty', async (t) => {
  t.same(await new JsonlSessionLog(freshDir()).read(), []);
});

t.test('an id already logged is not written again, also after a reopen', async (t) => {
  const dir = freshDir();
  const log = new JsonlSessionLog(dir);
  await log.append(entry(1));
  await log.append(entry(1, { reason: 'retried' }));
  await Promise.all([log.append(entry(2)), log.append(entry(2))]);
  const again = new JsonlSessionLog(dir);
  await again.open();
  await again.append(entry(1, { reason: 'after restart' }));
  await again.append(entry(3));
  t.equal((await lines(dir)).length, 3);
  t.same((await again.read()).map((e) => [e.session, e.reason]), [['s-1', 'idle'], ['s-2', 'idle'], ['s-3', 'idle']]);
});

t.test('rotation keeps at most `keep` files and read returns what they hold, in order', async (t) => {
  const dir = freshDir();
  const lineBytes = Buffer.byteLength(`${JSON.stringify(entry(10))}\n`);
  // Two lines fit in a file, a third rotates it.
  const log = new JsonlSessionLog(dir, { maxBytes: lineBytes * 2 + 5, keep: 2 });
  for (let n = 10; n < 30; n++) await log.append(entry(n));
  t.same((await readdir(dir)).sort(), ['sessions.jsonl', 'sessions.jsonl.1', 'sessions.jsonl.2']);
  for (const file of ['sessions.jsonl', 'sessions.jsonl.1', 'sessions.jsonl.2']) {
    t.equal((await lines(dir, file)).length, 2, `${file} holds two entries`);
    t.ok((await stat(join(dir, file))).size <= lineBytes * 2 + 5, `${file} is within maxBytes`);
  }
  const expected = [24, 25, 26, 27, 28, 29].map((n) => entry(n));
  t.same(await log.read(), expected, 'the newest six, oldest first');
  t.same(await new JsonlSessionLog(dir, { maxBytes: lineBytes * 2 + 5, keep: 2 }).read(), expected);

  // A smaller keep on a later start drops the surplus at the next rotation.
  const fewer = new JsonlSessionLog(dir, { maxBytes: lineBytes * 2 + 5, keep: 1 });
  await fewer.append(entry(30));
  t.same((await readdir(dir)).sort(), ['sessions.jsonl', 'sessions.jsonl.1']);
  t.same((await fewer.read()).map((e) => e.session), ['s-28', 's-29', 's-30']);
});

t.test('keep 0 keeps no rotated file', async (t) => {
  const dir = freshDir();
  const log = new JsonlSessionLog(dir, { maxBytes: 1, keep: 0 });
  await log.append(entry(1));
  await log.append(entry(2));
  t.same(await readdir(dir), ['sessions.jsonl']);
  t.same((await log.read()).map((e) => e.session), ['s-2'], 'an entry bigger than maxBytes still gets written');
});

t.test('a torn last line is skipped and the next append starts a line of its own', async (t) => {
  const dir = freshDir();
  await mkdir(dir);
  const whole = JSON.stringify(entry(1));
  const torn = JSON.stringify(entry(2)).slice(0, 40);
  await writeFile(join(dir, 'sessions.jsonl'), `${whole}\n${torn}`);
  const log = new JsonlSessionLog(dir);
  t.same(await log.read(), [entry(1)]);
  await log.append(entry(3));
  t.same(await lines(dir), [whole, torn, JSON.stringify(entry(3))]);
  t.same(await log.read(), [entry(1), entry(3)]);
  // The torn entry's id was never logged, so its retry is written.
  await log.append(entry(2));
  t.same((await new JsonlSessionLog(dir).read()).map((e) => e.session), ['s-1', 's-2', 's-3']);
});

t.test('lines that are not entries are skipped, never fatal', async (t) => {
  const dir = freshDir();
  await mkdir(dir);
  const { station: _station, ...noStation } = entry(2);
  const junk = [
    'not json',
    '[]',
    'null',
    '',
    JSON.stringify(noStation),
    JSON.stringify({ ...entry(3), station: { name: 'no-address' } }),
    JSON.stringify({ ...entry(4), endedAt: 'yesterday' }),
    JSON.stringify({ ...entry(5), connectedAt: null }),
    JSON.stringify({ ...entry(6), protocol: 'v9' }),
    JSON.stringify({ ...entry(7), session: '' }),
    JSON.stringify({ ...entry(8), extra: 'dropped' }),
  ];
  await writeFile(join(dir, 'sessions.jsonl'), `${JSON.stringify(entry(1))}\n${junk.join('\n')}\n`);
  await writeFile(join(dir, 'sessions.jsonl.1'), '\u0000\u0000garbage\n');
  const log = new JsonlSessionLog(dir);
  t.same(await log.read(), [entry(1), entry(8)], 'unknown fields are dropped, the rest kept');
  await log.append(entry(2));
  t.same((await log.read()).map((e) => e.session), ['s-1', 's-2', 's-8'], 'a skipped line does not count as logged');
});

t.test('an incomplete entry is refused, not written', async (t) => {
  const dir = freshDir();
  const log = new JsonlSessionLog(dir);
  await t.rejects(log.append({ ...entry(1), station: { address: '' } }), { code: 'invalid-argument' });
  await log.append(entry(2));
  t.same(await lines(dir), [JSON.stringify(entry(2))], 'the chain goes on after a refusal');
});

t.test('50 concurrent appends are all there, each on its own line', async (t) => {
  const dir = freshDir();
  const log = new JsonlSessionLog(dir, { maxBytes: 4096, keep: 100 });
  const all = Array.from({ length: 50 }, (_, i) => entry(i));
  await Promise.all(all.map((e) => log.append(e)));
  const files = (await readdir(dir)).filter((f) => f.startsWith('sessions.jsonl'));
  t.ok(files.length > 1, 'they rotated on the way');
  let count = 0;
  for (const file of files) {
    for (const line of await lines(dir, file)) {
      t.doesNotThrow(() => JSON.parse(line), `${file}: a whole line`);
      count++;
    }
  }
  t.equal(count, 50);
  t.same(await log.read(), all, 'in the order they were called');
});

t.test('since keeps entries that ended at or after it', async (t) => {
  const log = new JsonlSessionLog(freshDir());
  for (const n of [3, 1, 2, 4]) await log.append(entry(n));
  t.same((await log.read(entry(2).endedAt)).map((e) => e.session), ['s-2', 's-3', 's-4'], 'sorted by end, boundary included');
  t.same(await log.read(entry(4).endedAt + 1), []);
  t.same((await log.read(0)).length, 4);
});

t.test('equal end times keep the order they were written in', async (t) => {
  const log = new JsonlSessionLog(freshDir());
  for (const n of [5, 3, 9]) await log.append(entry(n, { endedAt: T0 }));
  t.same((await log.read()).map((e) => e.session), ['s-5', 's-3', 's-9']);
});

t.test('file system failures are disk-failed errors naming the path', async (t) => {
  const notDir = join(ROOT, 'plain-file');
  await writeFile(notDir, '');
  const log = new JsonlSessionLog(join(notDir, 'log'));
  const err = await log.append(entry(1)).catch((e: unknown) => e);
  t.ok(err instanceof TabulaError);
  t.match(err, { code: 'disk-failed', message: new RegExp(notDir) });
  await t.rejects(log.read(), { code: 'disk-failed' }, 'every call reports it, the chain goes on');

  const dir = freshDir();
  await mkdir(join(dir, 'sessions.jsonl'), { recursive: true });
  await t.rejects(new JsonlSessionLog(dir).append(entry(1)), { code: 'disk-failed', message: /sessions\.jsonl/ });
});

t.test('bad options are refused', async (t) => {
  t.throws(() => new JsonlSessionLog(freshDir(), { maxBytes: 0 }), { code: 'invalid-argument' });
  t.throws(() => new JsonlSessionLog(freshDir(), { keep: -1 }), { code: 'invalid-argument' });
  t.throws(() => new JsonlSessionLog(freshDir(), { keep: 1.5 }), { code: 'invalid-argument' });
});
