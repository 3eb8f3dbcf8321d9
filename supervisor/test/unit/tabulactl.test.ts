import t from 'tap';
import { checkOptions, COMMANDS, commandHelp, parseCommandLine, parseCount, usage } from '../../src/cli/commands.js';
import { formatLiveSessions, formatPools, formatStatus, type PoolView, type SessionRow } from '../../src/cli/format.js';
import { journalArgs } from '../../src/cli/logs.js';
import { TabulaError } from '../../src/domain/errors.js';

const NOW = Date.UTC(2030, 0, 1, 12);

function usageError(argv: string[]): string {
  try {
    parseCommandLine(argv);
  } catch (e) {
    t.equal((e as TabulaError).code, 'invalid-argument', `${argv.join(' ')}: a usage error`);
    return (e as TabulaError).message;
  }
  t.fail(`${argv.join(' ')} was accepted`);
  return '';
}

t.test('the command line: command, arguments, options, --json anywhere', async (t) => {
  const p = parseCommandLine(['resize', 'desk', '3', '--json']);
  t.equal(p.kind, 'run');
  if (p.kind !== 'run') return;
  t.equal(p.command.name, 'resize');
  t.same(p.args, ['desk', '3']);
  t.equal(p.json, true);
  const s = parseCommandLine(['--json', 'sessions', '--since', '1h', '--live']);
  t.same(s.kind === 'run' ? [s.json, s.options] : [], [true, { '--since': '1h', '--live': true }]);
  const f = parseCommandLine(['factory-reset', '--keep-images', '--yes']);
  t.same(f.kind === 'run' ? f.options : {}, { '--keep-images': true, '--yes': true });
  const l = parseCommandLine(['logs', '-f', '-n', '50']);
  t.same(l.kind === 'run' ? l.options : {}, { '-f': true, '-n': '50' });
  const w = parseCommandLine(['whitelist', 'set', 'a.test', 'b.test']);
  t.same(w.kind === 'run' ? w.args : [], ['set', 'a.test', 'b.test']);
});

t.test('help: tabulactl --help and COMMAND --help exit 0; nothing at all is a usage error (2)', async (t) => {
  const all = parseCommandLine(['--help']);
  t.same(all.kind === 'help' ? all.code : -1, 0);
  const none = parseCommandLine([]);
  t.same(none.kind === 'help' ? none.code : -1, 2, 'no command: the overview, exit 2');
  for (const c of COMMANDS) {
    t.match(usage(), new RegExp(`\\n  ${c.name}\\b`), `the overview lists ${c.name}`);
    const one = parseCommandLine([c.name, '--help']);
    t.ok(one.kind === 'help' && one.code === 0 && one.text.startsWith(`usage: tabulactl [--json] ${c.name}`), `${c.name} --help`);
    t.match(commandHelp(c), /Exit codes: 0 ok; 1 failure[\s\S]*2 usage[\s\S]*3 supervisor not running[\s\S]*4 no such object[\s\S]*5 permission denied/, `${c.name} --help gives the exit codes`);
  }
  t.match(commandHelp(COMMANDS.find((c) => c.name === 'drain')!), /Needs root/, 'admin commands say who may');
});

t.test('usage errors name what is wrong', async (t) => {
  t.match(usageError(['frobnicate']), /unknown command "frobnicate"/);
  t.match(usageError(['status', 'extra']), /status takes no arguments; unexpected: extra/);
  t.match(usageError(['drain']), /drain takes POOL/);
  t.match(usageError(['resize', 'desk']), /resize takes POOL N/);
  t.match(usageError(['end-session', 'a', 'b']), /unexpected: b/);
  t.match(usageError(['sessions', '--since']), /--since needs a value/);
  t.match(usageError(['status', '--yes']), /status: unknown option --yes/);
  t.match(usageError(['--live', 'sessions']), /options go after the command/);
  const checked = (argv: string[]) => {
    const p = parseCommandLine(argv);
    if (p.kind !== 'run') throw new Error('not a command');
    checkOptions(p, NOW);
  };
  t.throws(() => checked(['sessions', '--live', '--since', '1h']), { message: '--csv and --since are for the session log, not --live' });
  t.throws(() => checked(['sessions', '--csv', '--json']), { message: '--csv and --json exclude each other' });
  t.throws(() => checked(['sessions', '--since', 'soon']), { code: 'invalid-argument' });
  t.throws(() => checked(['resize', 'desk', 'two']), { message: 'the size must be a whole number, not "two"' });
  t.throws(() => checked(['logs', '-n', 'x']), { message: '-n must be a whole number, not "x"' });
  t.doesNotThrow(() => checked(['sessions', '--since', '2h', '--csv']));
  t.throws(() => parseCount('-1', 'the size'), { message: 'the size must be a whole number, not "-1"' });
  t.throws(() => parseCount('2x', 'the size'));
  t.equal(parseCount('12', 'the size'), 12);
});


const SESSIONS: SessionRow[] = [
  { id: 'Ab3_x-9', station: 'kiosk-3', address: '169.254.24.13', pool: 'desk', vm: 'tabula-desk-0', protocol: 'v1', startedAt: NOW - 600_000, connectedAt: NOW - 590_000, lastActivity: NOW - 30_000 },
  { id: 'Zz9', station: '169.254.24.10', address: '169.254.24.10', pool: 'lab', vm: 'tabula-lab-1', protocol: 'v0', startedAt: NOW - 5_000, lastActivity: NOW - 5_000 },
];

t.test('sessions under way as a table: id, station (name and address), pool, VM, for how long, idle, connected', async (t) => {
  const text = formatLiveSessions(SESSIONS, NOW);
  const [header, first, second, end] = text.split('\n');
  t.match(header, /^SESSION\s+STATION\s+POOL\s+VM\s+FOR\s+IDLE\s+CONNECTED$/);
  t.match(first, /^Ab3_x-9\s+kiosk-3 \(169\.254\.24\.13\)\s+desk\s+tabula-desk-0\s+10m\s+30s\s+yes$/);
  t.match(second, /^Zz9\s+169\.254\.24\.10\s+lab\s+tabula-lab-1\s+5s\s+5s\s+not yet$/);
  t.equal(end, '', 'ends with a newline');
  t.equal(header?.indexOf('STATION'), first?.indexOf('kiosk-3'), 'columns line up');
  t.equal(formatLiveSessions([], NOW), 'no sessions under way\n');
});

t.test('pools as a table, with DRAINED; status adds the VMs and the live sessions', async (t) => {
  const pool = (name: string, drained: boolean, healthy = true): PoolView => ({
    name,
    size: 2,
    healthy,
    healthReason: healthy ? '' : 'golden image gone',
    drained,
    counts: { clean: 1, 'in-use': 1 },
    vms: [{ name: `tabula-${name}-0`, uuid: 'u', pool: name, slot: 0, state: 'clean', active: true, stateSince: NOW - 60_000, spicePort: 5920 }],
  });
  const text = formatPools([pool('desk', false), pool('lab', true, false)]);
  t.match(text, /^POOL\s+SIZE\s+CLEAN\s+BOOTING\s+CLONING\s+IN-USE\s+DIRTY\s+SERVING\s+HEALTH\n/);
  t.match(text, /\ndesk\s+2\s+1\s+0\s+0\s+1\s+0\s+yes\s+ok\n/);
  t.match(text, /\nlab\s+2\s+1\s+0\s+0\s+1\s+0\s+DRAINED\s+UNHEALTHY: golden image gone\n/);
  const status = formatStatus({ version: '1.2', state: 'ready', reason: '', line: '', pools: [pool('desk', false)], sessions: SESSIONS }, NOW);
  t.match(status, /^Tabula supervisor 1\.2: ready\n/);
  t.match(status, /\ntabula-desk-0\s+desk\s+0\s+clean\s+60s\s+yes\s+5920\s+u\n/);
  t.match(status, /\nSESSION\s+STATION/);
  t.notMatch(formatStatus({ version: '1', state: 'ready', reason: '', line: '', pools: [], sessions: [] }, NOW), /SESSION/, 'no session table without sessions');
});

t.test('logs: journalctl on the supervisor\'s unit, -f and -n passed through', async (t) => {
  t.same(journalArgs({ follow: false }), ['--unit', 'tabula-supervisor', '--no-pager']);
  t.same(journalArgs({ follow: true, lines: 20 }), ['--unit', 'tabula-supervisor', '--no-pager', '--follow', '--lines', '20']);
});
