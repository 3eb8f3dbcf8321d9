// FactoryReset over the real process runner: a small script stands in for the appliance's.
import { mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runProcess } from '../../src/adapters/process-command.js';
import { FactoryReset } from '../../src/app/factory-reset.js';
import { TabulaError } from '../../src/domain/errors.js';
import { MemoryLogger } from '../fakes/memory-logger.js';

const dir = await mkdtemp(join(tmpdir(), 'tabula-unit-reset-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

/** A script that records its arguments and environment, then exits with `code`. */
async function script(code: number): Promise<string> {
  const path = join(dir, `reset-${code}`);
  await writeFile(path, `#!/bin/sh\necho "$@" >>"${dir}/args-${code}"\necho "$TABULA_STATE_DIR" >>"${dir}/env-${code}"\n[ ${code} -eq 0 ] || echo "reset: no data partition" >&2\nexit ${code}\n`);
  await chmod(path, 0o755);
  return path;
}

function reset(command: string[]) {
  const logger = new MemoryLogger();
  return { logger, reset: new FactoryReset({ command: () => command, env: () => ({ TABULA_STATE_DIR: '/var/lib/test' }), run: runProcess, logger }) };
}

async function failure(p: Promise<unknown>): Promise<TabulaError | undefined> {
  return p.then(() => undefined, (e: unknown) => e as TabulaError);
}

t.test('runs the command with keep-images or erase-all and returns once it exited 0', async (t) => {
  const { reset: r, logger } = reset([await script(0), '--from-test']);
  await r.run(true, 'factory-reset');
  await r.run(false, 'factory-reset');
  t.equal(await readFile(join(dir, 'args-0'), 'utf8'), '--from-test keep-images\n--from-test erase-all\n', 'one extra argument, in that order');
  t.equal((await readFile(join(dir, 'env-0'), 'utf8')).split('\n')[0], '/var/lib/test', 'with the state directory in its environment');
  t.same(logger.find('factory-reset-accepted').map((r) => r.fields['mode']), ['keep-images', 'erase-all']);
});

t.test('a wrong confirmation is refused and nothing runs', async (t) => {
  const { reset: r } = reset([await script(0)]);
  for (const confirm of ['', 'yes', 'factory reset', 'FACTORY-RESET']) {
    const e = await failure(r.run(true, confirm));
    t.equal(e?.code, 'invalid-argument', JSON.stringify(confirm));
    t.match(e?.message, /the confirmation must be the words "factory-reset"/);
  }
  await rm(join(dir, 'args-0'), { force: true });
  await r.run(true, 'nope').catch(() => undefined);
  await t.rejects(readFile(join(dir, 'args-0')), 'the command never ran');
});

t.test('a failing command: the error names the exit code and what it said', async (t) => {
  const { reset: r, logger } = reset([await script(3)]);
  const e = await failure(r.run(false, 'factory-reset'));
  t.equal(e?.code, 'command-failed');
  t.match(e?.message, /exited with code 3: reset: no data partition$/);
  t.equal(logger.find('factory-reset-failed').length, 1);
  const missing = await failure(reset([join(dir, 'no-such-program')]).reset.run(true, 'factory-reset'));
  t.equal(missing?.code, 'command-failed');
  t.match(missing?.message, /cannot run .*no-such-program/);
});
