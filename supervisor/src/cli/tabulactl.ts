#!/usr/bin/env node
import dbus from 'dbus-next';
import { call, type Bus } from '../adapters/dbus/call.js';
import { connectSystemBus } from '../adapters/dbus/connect.js';
import { BUS_NAME, ERROR_PREFIX, POOL_IFACE, ROOT_IFACE, ROOT_PATH, VM_IFACE } from '../api/dbus/names.js';
import { TabulaError, type ErrorCode } from '../domain/errors.js';
import { formatStatus, table, type StatusView } from './format.js';
import { formatSessions, parseSince } from './sessions.js';
import type { SessionLogEntry } from '../domain/session-log.js';
import { renderSessionsCsv } from '../render/session-csv.js';

const USAGE = `usage: tabulactl [--json] COMMAND [ARGS]

Commands:
  status            pools, their VMs and the supervisor's health
  recycle VM        destroy VM and replace it with a fresh clone
  sessions [--since WHEN] [--csv]
                    the session log: who had which VM, when, and why it ended;
                    WHEN is a duration back (30m, 12h, 7d) or a date (2026-11-20)
  wipe --yes        emergency wipe: destroy every VM, delete every disk, end every
                    session; the pools are then rebuilt from the golden images

  stations          stations on the station LAN (from their DHCP leases)
  whitelist list | add ENTRY | remove ENTRY | set [ENTRY...]
                    what the VMs may reach: example.org, *.example.org, 203.0.113.0/24;
                    applies at once, sessions go on

Options:
  --json            machine-readable output
  --csv             (sessions) comma-separated values, for spreadsheets
  --yes             (wipe) yes, really
  -h, --help        this help

Exit codes: 0 ok, 1 failure, 2 usage, 3 supervisor not running, 4 no such object, 5 permission denied.`;

const EXIT: Partial<Record<ErrorCode, number>> = { 'invalid-argument': 2, 'bus-unavailable': 3, 'not-found': 4 };
const TIMEOUT_MS = 10_000;
/** A wipe destroys every VM (about a second or two each, in parallel) and waits for the round under way. */
const WIPE_TIMEOUT_MS = 120_000;
const WIPE_WARNING = `tabulactl: wipe destroys every Tabula VM of every pool, deletes every disk and console log
Tabula made, and ends every session under way (the stations are told); the pools are then
rebuilt from the golden images. Nothing of it can be undone. Pass --yes to wipe.
`;

function translate(name: string, text: string): ErrorCode {
  if (name === 'org.freedesktop.DBus.Error.ServiceUnknown' || name === 'org.freedesktop.DBus.Error.NameHasNoOwner') return 'bus-unavailable';
  if (name === 'org.freedesktop.DBus.Error.AccessDenied') return 'internal';
  if (name.startsWith(`${ERROR_PREFIX}.`)) {
    const code = name.slice(ERROR_PREFIX.length + 1).replace(/[A-Z]/g, (c, i: number) => (i > 0 ? '-' : '') + c.toLowerCase());
    return code as ErrorCode;
  }
  return /not.*found/i.test(text) ? 'not-found' : 'internal';
}

function unwrap(v: unknown): unknown {
  if (v instanceof dbus.Variant) return unwrap(v.value);
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(unwrap);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrap(x)]));
  return v;
}

async function getAll(bus: Bus, path: string, iface: string): Promise<Record<string, unknown>> {
  const [props] = await call(
    bus,
    { destination: BUS_NAME, path, interface: 'org.freedesktop.DBus.Properties', member: 'GetAll', signature: 's', body: [iface] },
    TIMEOUT_MS,
    translate,
  );
  return unwrap(props) as Record<string, unknown>;
}

async function readStatus(bus: Bus): Promise<StatusView> {
  const root = await getAll(bus, ROOT_PATH, ROOT_IFACE);
  const pools = await Promise.all(
    (root['Pools'] as string[]).map(async (path) => {
      const p = await getAll(bus, path, POOL_IFACE);
      const vms = await Promise.all((p['Vms'] as string[]).map((vmPath) => getAll(bus, vmPath, VM_IFACE)));
      return {
        name: p['Name'] as string,
        size: p['Size'] as number,
        healthy: p['Healthy'] as boolean,
        healthReason: p['HealthReason'] as string,
        counts: p['Counts'] as Record<string, number>,
        vms: vms.map((vm) => ({
          name: vm['Name'] as string,
          uuid: vm['Uuid'] as string,
          pool: vm['Pool'] as string,
          slot: vm['Slot'] as number,
          state: vm['State'] as string,
          active: vm['Active'] as boolean,
          stateSince: vm['StateSince'] as number,
          ...((vm['SpicePort'] as number) > 0 ? { spicePort: vm['SpicePort'] as number } : {}),
        })),
      };
    }),
  );
  return {
    version: root['Version'] as string,
    state: root['State'] as string,
    reason: root['StateReason'] as string,
    line: root['Status'] as string,
    pools,
  };
}

async function readSessions(bus: Bus, since: number): Promise<SessionLogEntry[]> {
  const [list] = await call(
    bus,
    { destination: BUS_NAME, path: ROOT_PATH, interface: ROOT_IFACE, member: 'ListSessions', signature: 't', body: [BigInt(Math.max(0, since))] },
    TIMEOUT_MS,
    translate,
  );
  return (unwrap(list) as Array<Record<string, unknown>>).map((d) => {
    const str = (k: string) => (typeof d[k] === 'string' ? (d[k] as string) : undefined);
    const num = (k: string) => (typeof d[k] === 'number' ? (d[k] as number) : undefined);
    const opt = <T>(k: string, v: T | undefined) => (v === undefined ? {} : { [k]: v });
    return {
      session: str('Session') ?? '',
      station: { address: str('StationAddress') ?? '', ...opt('mac', str('StationMac')), ...opt('name', str('StationName')) },
      pool: str('Pool') ?? '',
      vm: str('Vm') ?? '',
      protocol: str('Protocol') === 'v1' ? 'v1' : 'v0',
      ...opt('requestedAt', num('RequestedAt')),
      handedAt: num('HandedAt') ?? 0,
      ...opt('connectedAt', num('ConnectedAt')),
      endedAt: num('EndedAt') ?? 0,
      reason: str('Reason') ?? '',
    };
  });
}

/** Takes `--name VALUE` out of `args`; undefined when absent. */
function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const value = args[i + 1];
  if (value === undefined || value.startsWith('--')) throw new TabulaError('invalid-argument', `${name} needs a value`);
  args.splice(i, 2);
  return value;
}

async function run(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const csv = argv.includes('--csv');
  const args = argv.filter((a) => a !== '--json' && a !== '--csv');
  if (args.length === 0 || args.includes('-h') || args.includes('--help')) {
    process.stdout.write(USAGE + '\n');
    return args.length === 0 ? 2 : 0;
  }
  const [command, ...rest] = args;
  let bus: Bus | undefined;
  try {
    // Arguments are checked before the bus is asked anything.
    const since = command === 'sessions' ? option(rest, '--since') : undefined;
    const sinceMs = since === undefined ? 0 : parseSince(since, Date.now());
    if (csv && command !== 'sessions') throw new TabulaError('invalid-argument', '--csv is for sessions only');
    if (csv && json) throw new TabulaError('invalid-argument', '--csv and --json exclude each other');
    if (command === 'wipe') {
      const extra = rest.filter((a) => a !== '--yes');
      if (extra.length > 0) throw new TabulaError('invalid-argument', `wipe: unexpected ${extra.join(' ')}`);
      if (!rest.includes('--yes')) {
        process.stderr.write(WIPE_WARNING);
        return 2;
      }
    }
    bus = await connectSystemBus(TIMEOUT_MS);
    bus.on('error', () => undefined);
    switch (command) {
      case 'status': {
        if (rest.length > 0) throw new TabulaError('invalid-argument', 'status takes no arguments');
        const status = await readStatus(bus);
        process.stdout.write(json ? JSON.stringify(status, null, 2) + '\n' : formatStatus(status, Date.now()));
        return 0;
      }
      case 'recycle': {
        if (rest.length !== 1) throw new TabulaError('invalid-argument', 'recycle takes one VM name (see tabulactl status)');
        await call(
          bus,
          { destination: BUS_NAME, path: ROOT_PATH, interface: ROOT_IFACE, member: 'RecycleVm', signature: 's', body: [rest[0]] },
          TIMEOUT_MS,
          translate,
        );
        process.stdout.write(json ? JSON.stringify({ recycled: rest[0] }) + '\n' : `${rest[0]}: marked dirty; a fresh clone replaces it\n`);
        return 0;
      }
      case 'sessions': {
        if (rest.length > 0) throw new TabulaError('invalid-argument', `sessions: unexpected ${rest.join(' ')}`);
        const entries = await readSessions(bus, sinceMs);
        process.stdout.write(json ? JSON.stringify(entries, null, 2) + '\n' : csv ? renderSessionsCsv(entries) : formatSessions(entries));
        return 0;
      }
      case 'wipe': {
        const [domains, files, sessions] = (await call(
          bus,
          { destination: BUS_NAME, path: ROOT_PATH, interface: ROOT_IFACE, member: 'Wipe' },
          WIPE_TIMEOUT_MS,
          translate,
        )) as [number, number, number];
        process.stdout.write(json ? JSON.stringify({ domains, files, sessions }) + '\n' : `wiped: ${domains} VMs, ${files} files, ${sessions} sessions ended\n`);
        return 0;
      }
      case 'stations': {
        if (rest.length > 0) throw new TabulaError('invalid-argument', 'stations takes no arguments');
        const [list] = await call(bus, { destination: BUS_NAME, path: ROOT_PATH, interface: ROOT_IFACE, member: 'ListStations' }, TIMEOUT_MS, translate);
        const stations = (unwrap(list) as Array<Record<string, unknown>>).map((d) => ({
          address: d['Address'] as string,
          mac: d['Mac'] as string,
          ...(d['Name'] === undefined ? {} : { name: d['Name'] as string }),
          lastSeen: d['LastSeen'] as number,
        }));
        if (json) process.stdout.write(JSON.stringify(stations, null, 2) + '\n');
        else if (stations.length === 0) process.stdout.write('no station has a lease\n');
        else process.stdout.write(table([['ADDRESS', 'MAC', 'NAME', 'LAST SEEN'], ...stations.map((s) => [s.address, s.mac, s.name ?? '-', new Date(s.lastSeen).toISOString().replace('T', ' ').slice(0, 19)])]));
        return 0;
      }
      case 'whitelist': {
        const [action, ...entries] = rest;
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
        const [member, signature, body] = m;
        const [list] = await call(bus, { destination: BUS_NAME, path: ROOT_PATH, interface: ROOT_IFACE, member, ...(signature ? { signature, body } : {}) }, TIMEOUT_MS, translate);
        const out = list as string[];
        process.stdout.write(json ? JSON.stringify(out) + '\n' : out.length === 0 ? 'the whitelist is empty: VMs reach nothing beyond the server\n' : out.join('\n') + '\n');
        return 0;
      }
      default:
        throw new TabulaError('invalid-argument', `unknown command "${command}"`);
    }
  } catch (e) {
    const err = e instanceof TabulaError ? e : new TabulaError('internal', String(e));
    const denied = /AccessDenied|not allowed|rejected send message/i.test(err.message);
    const message =
      err.code === 'bus-unavailable'
        ? bus === undefined
          ? err.message
          : `the Tabula supervisor is not running (${BUS_NAME} is not on the system bus)`
        : denied
          ? `permission denied: reading needs membership of group "tabula", changing anything needs root`
          : err.message;
    process.stderr.write(`tabulactl: ${message}\n`);
    if (err.code === 'invalid-argument') process.stderr.write(`${USAGE}\n`);
    return denied ? 5 : (EXIT[err.code] ?? 1);
  } finally {
    bus?.disconnect();
  }
}

run(process.argv.slice(2)).then((code) => process.exit(code));
