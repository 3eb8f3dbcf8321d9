#!/usr/bin/env node
import { type Bus } from '../adapters/dbus/call.js';
import { connectSystemBus } from '../adapters/dbus/connect.js';
import { BUS_NAME } from '../api/dbus/names.js';
import { TabulaError, type ErrorCode } from '../domain/errors.js';
import { renderSessionsCsv } from '../render/session-csv.js';
import { ADMIN_TIMEOUT_MS, SupervisorClient } from './client.js';
import { checkOptions, parseCommandLine, parseCount, type Parsed } from './commands.js';
import { formatLiveSessions, formatPools, formatStatus, formatVms, table } from './format.js';
import { imageCommand } from './images.js';
import { NO_JOURNAL, showLogs } from './logs.js';
import { formatSessions, parseSince } from './sessions.js';
import { formatTimeouts, timeoutsCommand } from './timeouts.js';

const EXIT: Partial<Record<ErrorCode, number>> = { 'invalid-argument': 2, 'golden-image-invalid': 2, 'bus-unavailable': 3, 'not-found': 4, 'access-denied': 5 };
/** A wipe destroys every VM (about a second or two each, in parallel) and waits for the round under way. */
const WIPE_TIMEOUT_MS = 120_000;
/** The factory-reset command may take its time (the supervisor gives it 300 s). */
const FACTORY_RESET_TIMEOUT_MS = 310_000;

const WIPE_WARNING = `tabulactl: wipe destroys every Tabula VM of every pool, deletes every disk and console log
Tabula made, and ends every session under way (the stations are told); the pools are then
rebuilt from the golden images. Nothing of it can be undone. Pass --yes to wipe.
`;
const RESET_WARNING = `tabulactl: factory-reset erases the settings, the session log and the logs, and the golden
images too unless --keep-images is given; the appliance then restarts as it left the factory.
Nothing of it can be undone. Pass --yes to reset.
`;

type Run = Extract<Parsed, { kind: 'run' }>;

/** What one command does with the supervisor; returns what to print. */
type Handler = (client: SupervisorClient, p: Run) => Promise<string>;

const out = (p: Run, json: unknown, human: string): string => (p.json ? JSON.stringify(json, null, 2) + '\n' : human);

const HANDLERS: Record<string, Handler> = {
  status: async (c, p) => {
    const s = await c.status();
    return out(p, s, formatStatus(s, Date.now()));
  },
  pools: async (c, p) => {
    const { pools } = await c.status();
    const timeouts = formatTimeouts(pools);
    return out(p, pools.map(({ vms: _vms, ...pool }) => pool), formatPools(pools) + (timeouts === '' ? '' : `\n${timeouts}`));
  },
  vms: async (c, p) => {
    const { pools } = await c.status();
    const [only] = p.args;
    if (only !== undefined && !pools.some((x) => x.name === only)) throw new TabulaError('not-found', `no pool named "${only}"`);
    const vms = pools.filter((x) => only === undefined || x.name === only).flatMap((x) => x.vms);
    return out(p, vms, formatVms(vms, Date.now()));
  },
  sessions: async (c, p) => {
    if (p.options['--live'] === true) {
      const { sessions } = await c.status();
      return out(p, sessions, formatLiveSessions(sessions, Date.now()));
    }
    const since = p.options['--since'];
    const entries = await c.sessionLog(typeof since === 'string' ? parseSince(since, Date.now()) : 0);
    return p.options['--csv'] === true ? renderSessionsCsv(entries) : out(p, entries, formatSessions(entries));
  },
  stations: async (c, p) => {
    const stations = await c.stations();
    const human =
      stations.length === 0
        ? 'no station has a lease\n'
        : table([['ADDRESS', 'MAC', 'NAME', 'LAST SEEN'], ...stations.map((s) => [s.address, s.mac, s.name ?? '-', new Date(s.lastSeen).toISOString().replace('T', ' ').slice(0, 19)])]);
    return out(p, stations, human);
  },
  'end-session': async (c, p) => {
    const [id = ''] = p.args;
    await c.root('EndSession', 's', [id], ADMIN_TIMEOUT_MS);
    return out(p, { ended: id }, `session ${id} ended; its VM is being replaced by a fresh clone\n`);
  },
  recycle: async (c, p) => {
    const [vm = ''] = p.args;
    await c.root('RecycleVm', 's', [vm], ADMIN_TIMEOUT_MS);
    return out(p, { recycled: vm }, `${vm}: marked dirty; a fresh clone replaces it\n`);
  },
  drain: async (c, p) => {
    const [pool = ''] = p.args;
    await c.pool(pool, 'Drain');
    return out(p, { drained: pool }, `${pool}: drained: no VM is handed out and none is made; sessions under way finish\n`);
  },
  undrain: async (c, p) => {
    const [pool = ''] = p.args;
    await c.pool(pool, 'Undrain');
    return out(p, { undrained: pool }, `${pool}: serving stations again\n`);
  },
  resize: async (c, p) => {
    const [pool = '', n = ''] = p.args;
    const size = parseCount(n, 'the size');
    await c.pool(pool, 'Resize', 'u', [size]);
    return out(p, { pool, size }, `${pool}: keeps ${size} VM${size === 1 ? '' : 's'}\n`);
  },
  timeouts: async (c, p) => {
    const r = await timeoutsCommand(c, p.args[0] ?? '', p.options);
    return out(p, r.json, r.human);
  },
  wipe: async (c, p) => {
    const [domains, files, sessions] = (await c.root('Wipe', '', [], WIPE_TIMEOUT_MS)) as [number, number, number];
    return out(p, { domains, files, sessions }, `wiped: ${domains} VMs, ${files} files, ${sessions} sessions ended\n`);
  },
  whitelist: async (c, p) => {
    const [action, ...entries] = p.args;
    const methods: Record<string, [string, string, unknown[]]> = {
      list: ['ListWhitelist', '', []],
      add: ['AddToWhitelist', 's', [entries[0]]],
      remove: ['RemoveFromWhitelist', 's', [entries[0]]],
      set: ['SetWhitelist', 'as', [entries]],
    };
    const m = action === undefined ? undefined : methods[action];
    if (m === undefined) throw new TabulaError('invalid-argument', 'whitelist: expected list, add ENTRY, remove ENTRY or set [ENTRY...]');
    if ((action === 'add' || action === 'remove') && entries.length !== 1) throw new TabulaError('invalid-argument', `whitelist ${action} takes one entry`);
    if (action === 'list' && entries.length > 0) throw new TabulaError('invalid-argument', 'whitelist list takes no arguments');
    const [list] = (await c.root(m[0], m[1], m[2], action === 'list' ? undefined : ADMIN_TIMEOUT_MS)) as [string[]];
    return p.json ? JSON.stringify(list) + '\n' : list.length === 0 ? 'the whitelist is empty: VMs reach nothing beyond the server\n' : list.join('\n') + '\n';
  },
  image: async (c, p) => {
    const r = await imageCommand(c, p.args, p.options);
    return out(p, r.json, r.human);
  },
  reload: async (c, p) => {
    await c.root('ReloadConfig', '', [], ADMIN_TIMEOUT_MS);
    return out(p, { reloaded: true }, 'the config file is read again and applied\n');
  },
  'factory-reset': async (c, p) => {
    const keep = p.options['--keep-images'] === true;
    await c.root('FactoryReset', 'bs', [keep, 'factory-reset'], FACTORY_RESET_TIMEOUT_MS);
    return out(p, { factoryReset: keep ? 'keep-images' : 'erase-all' }, `factory reset (${keep ? 'keeping the golden images' : 'erasing everything'}) accepted: the appliance restarts\n`);
  },
};

/** Checks that need no supervisor, before the bus is asked anything; a refusal's exit code, or undefined to go on. */
function precheck(p: Run): number | undefined {
  checkOptions(p, Date.now());
  if (p.command.name === 'wipe' && p.options['--yes'] !== true) return warn(WIPE_WARNING);
  if (p.command.name === 'factory-reset' && p.options['--yes'] !== true) return warn(RESET_WARNING);
  return undefined;
}

function warn(text: string): number {
  process.stderr.write(text);
  return 2;
}

async function logs(p: Run): Promise<number> {
  const n = p.options['-n'];
  const result = await showLogs({ follow: p.options['-f'] === true, ...(typeof n === 'string' ? { lines: parseCount(n, '-n') } : {}) });
  if (result !== 'no-journal') return result;
  process.stderr.write(`tabulactl: ${NO_JOURNAL}\n`);
  return 1;
}

async function run(argv: string[]): Promise<number> {
  let bus: Bus | undefined;
  try {
    const parsed = parseCommandLine(argv);
    if (parsed.kind === 'help') {
      (parsed.code === 0 ? process.stdout : process.stderr).write(parsed.text + '\n');
      return parsed.code;
    }
    const refused = precheck(parsed);
    if (refused !== undefined) return refused;
    if (parsed.command.name === 'logs') return await logs(parsed);
    bus = await connectSystemBus(10_000);
    bus.on('error', () => undefined);
    const handler = HANDLERS[parsed.command.name];
    if (handler === undefined) throw new TabulaError('internal', `no handler for ${parsed.command.name}`);
    process.stdout.write(await handler(new SupervisorClient(bus), parsed));
    return 0;
  } catch (e) {
    const err = e instanceof TabulaError ? e : new TabulaError('internal', String(e));
    process.stderr.write(`tabulactl: ${explain(err, bus !== undefined)}\n`);
    if (err.code === 'invalid-argument' && err.cause === undefined) process.stderr.write('Run "tabulactl --help" (or tabulactl COMMAND --help) for usage.\n');
    return EXIT[err.code] ?? 1;
  } finally {
    bus?.disconnect();
  }
}

/** The error for people: what the supervisor said, without the D-Bus member in front. */
function explain(err: TabulaError, connected: boolean): string {
  const cause = err.cause as { type?: string; text?: string } | undefined;
  if (err.code === 'bus-unavailable') return connected ? `the Tabula supervisor is not running (${BUS_NAME} is not on the system bus)` : err.message;
  if (cause?.type === 'org.freedesktop.DBus.Error.AccessDenied') return 'permission denied: reading needs membership of group "tabula", changing anything needs root';
  const text = cause?.text ?? err.message;
  return err.code === 'access-denied' ? `permission denied: ${text}` : text;
}

run(process.argv.slice(2)).then((code) => process.exit(code));
