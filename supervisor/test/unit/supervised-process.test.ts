// SupervisedProcess with real (tiny) children: sh scripts that say they are
// up, die, or ignore SIGTERM. No network, no root, well under a second each.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import { SupervisedProcess, type SupervisedProcessOptions } from '../../src/adapters/supervised-process.js';
import { TabulaError } from '../../src/domain/errors.js';
import { MemoryLogger } from '../fakes/memory-logger.js';

function make(over: Partial<SupervisedProcessOptions> = {}): { p: SupervisedProcess; logger: MemoryLogger } {
  const logger = new MemoryLogger();
  const p = new SupervisedProcess({ name: 'toy', logger, ready: /^ready$/, settleMs: 30, graceMs: 300, backoffMs: 40, maxBackoffMs: 150, ...over });
  return { p, logger };
}

const sh = (script: string) => ['sh', '-c', script];

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function statOf(pid: number | undefined): string {
  try {
    return readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  } catch {
    return '';
  }
}

async function until(what: string, check: () => boolean, ms = 3000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; await delay(10)) if (check()) return;
  throw new Error(`timed out waiting for ${what}`);
}

async function rejection(p: Promise<unknown>): Promise<TabulaError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof TabulaError) return e;
    throw e;
  }
  throw new Error('did not reject');
}

t.test('up once it says so; stop ends it', async (t) => {
  const { p } = make();
  t.teardown(() => p.stop());
  t.notOk(p.running);
  await p.start(sh('echo starting; sleep 0.1; echo ready; exec sleep 30'));
  t.ok(p.running);
  const pid = p.pid;
  t.ok(alive(pid), 'the child runs');
  await p.stop();
  t.notOk(p.running);
  t.notOk(alive(pid), 'the child is gone');
  await p.stop(); // idempotent
});

t.test('a child that exits before it is up: rejected with its status and last words, not restarted', async (t) => {
  const { p, logger } = make();
  const e = await rejection(p.start(sh('echo "bad config line 3" >&2; exit 3')));
  t.equal(e.code, 'internal');
  t.match(e.message, /toy did not come up: it exited with code 3; its last output: bad config line 3/);
  t.notOk(p.running);
  await delay(150);
  t.same(logger.find('process-restarted'), [], 'no restart');
});

t.test('a program that does not exist, a failure line, no sign of life', async (t) => {
  const { p } = make();
  t.match((await rejection(p.start(['/nonexistent/daemon']))).message, /cannot run \/nonexistent\/daemon: .*ENOENT/);

  const { p: q } = make({ failure: /Could not open/ });
  const e = await rejection(q.start(sh('echo "Could not open NTP socket"; exec sleep 30')));
  t.match(e.message, /it reported: Could not open NTP socket/);
  t.notOk(q.running);

  const { p: r } = make({ readyTimeoutMs: 100 });
  const pidFile = join(await mkdtemp(join(tmpdir(), 'tabula-unit-sp-')), 'pid');
  t.teardown(() => rm(join(pidFile, '..'), { recursive: true, force: true }));
  t.match((await rejection(r.start(sh(`echo $$ > ${pidFile}; exec sleep 30`)))).message, /no sign of being up within 100 ms/);
  t.notOk(alive(Number(await readFile(pidFile, 'utf8'))), 'the silent child was killed');
});

t.test('a crash is logged once and restarted with growing backoff; a long run resets it', async (t) => {
  const { p, logger } = make();
  t.teardown(() => p.stop());
  await p.start(sh('echo ready; echo "lost my socket" >&2; sleep 0.1; exit 7'));
  await until('three crashes', () => logger.find('process-exited').length >= 3);
  const exits = logger.find('process-exited');
  t.match(exits[0]?.fields, { service: 'toy', status: 'with code 7', restart_in_ms: 40, output: /ready \| lost my socket/ });
  t.same(
    exits.map((r) => r.fields['restart_in_ms']),
    [40, 80, 150, 150].slice(0, exits.length),
    'doubling up to the cap',
  );
  t.ok(logger.find('process-restarted').length >= 2, 'restarted');
  await p.stop();
  const count = logger.find('process-exited').length;
  await delay(300);
  t.equal(logger.find('process-exited').length, count, 'nothing restarts after stop');
  t.notOk(p.running);

  const { p: q, logger: l2 } = make({ stableMs: 50 });
  t.teardown(() => q.stop());
  await q.start(sh('echo ready; sleep 0.15; exit 1'));
  await until('two crashes', () => l2.find('process-exited').length >= 2);
  t.same(
    l2.find('process-exited').map((r) => r.fields['restart_in_ms']),
    [40, 40],
    'each run outlived stableMs, so the backoff starts over',
  );
});

t.test('stop: SIGKILL after the grace period when SIGTERM is ignored', async (t) => {
  const { p } = make({ graceMs: 200 });
  await p.start(sh('trap "" TERM; echo ready; while :; do sleep 0.05; done'));
  const pid = p.pid;
  const started = Date.now();
  await p.stop();
  const took = Date.now() - started;
  t.ok(took >= 190, `waited the grace period (${took} ms)`);
  t.notOk(alive(pid));
});

t.test('keepTrying: a start that fails goes on retrying until stopped', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tabula-unit-sp-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const flag = join(dir, 'ok');
  const { p, logger } = make();
  t.teardown(() => p.stop());
  // Fails until the flag file exists.
  const e = await rejection(p.start(sh(`test -e ${flag} || exit 2; echo ready; exec sleep 30`), { keepTrying: true }));
  t.match(e.message, /exited with code 2/);
  t.equal(logger.find('process-start-failed').length, 1);
  await writeFile(flag, '');
  await until('up by itself', () => p.running);
  t.ok(logger.find('process-restarted').length >= 1);
});

t.test('a daemon left by a previous supervisor is ended before a new start', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tabula-unit-sp-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const record = { file: join(dir, 'toy.pid'), marker: join(dir, 'toy.conf') };
  // Its command line carries the marker (as $0), as a real one carries its config path.
  const leftover = spawn('sh', ['-c', 'while :; do sleep 0.05; done', record.marker], { stdio: 'ignore' });
  t.teardown(() => leftover.kill('SIGKILL'));
  const bystander = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => bystander.kill('SIGKILL'));
  await until('the leftover runs', () => alive(leftover.pid));

  // A record naming a process without the marker is not followed.
  await writeFile(record.file, `${bystander.pid}\n`);
  const { p } = make({ pidRecord: record });
  t.teardown(() => p.stop());
  await p.start(sh(`echo ready; exec sleep 30 # ${record.marker}`));
  t.ok(alive(bystander.pid), 'an unrelated process is left alone');
  t.equal((await readFile(record.file, 'utf8')).trim(), String(p.pid), 'the new child is recorded');
  await p.stop();

  await writeFile(record.file, `${leftover.pid}\n`);
  await p.start(sh(`echo ready; exec sleep 30 # ${record.marker}`));
  // An orphan's zombie may linger until PID 1 reaps it; the process itself is gone.
  // Ended: gone, or a zombie until its parent (this test) reaps it.
  await until('the leftover ended', () => !/\) [^ZX] /.test(statOf(leftover.pid)));
  t.pass('the leftover ended');
});
