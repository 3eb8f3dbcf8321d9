import { TabulaError } from '../domain/errors.js';
import { parseSince } from './sessions.js';
import { TIMEOUT_OPTIONS, TIMEOUTS_HELP, timeoutChanges } from './timeouts.js';

/** One tabulactl command as the command line and --help know it. */
export interface CommandSpec {
  readonly name: string;
  /** The arguments after the name, as --help shows them. */
  readonly synopsis: string;
  readonly summary: string;
  /** More for `tabulactl COMMAND --help`. */
  readonly details?: string;
  readonly args: { readonly min: number; readonly max: number };
  /** Options without a value (besides --json, --help). */
  readonly switches?: readonly string[];
  /** Options that take a value. */
  readonly valued?: readonly string[];
  /** Asks the supervisor to change something (so root, or polkit). */
  readonly admin?: boolean;
}

export const COMMANDS: readonly CommandSpec[] = [
  { name: 'status', synopsis: '', summary: "the supervisor's health, its pools, VMs and the sessions under way", args: { min: 0, max: 0 } },
  { name: 'pools', synopsis: '', summary: 'each pool: size, VMs per state, drained, health', args: { min: 0, max: 0 } },
  { name: 'vms', synopsis: '[POOL]', summary: 'every VM (or those of POOL): state, for how long, console port', args: { min: 0, max: 1 } },
  {
    name: 'sessions',
    synopsis: '[--live] [--since WHEN] [--csv]',
    summary: 'the session log: who had which VM, when, and why it ended; --live: the sessions under way',
    details:
      'WHEN is a duration back from now (30m, 12h, 7d) or a date (2026-11-20, 2026-11-20T08:00).\n' +
      '--live lists the sessions under way instead, with the ID that end-session takes.\n' +
      '--csv writes comma-separated values (the log only).',
    args: { min: 0, max: 0 },
    switches: ['--live', '--csv'],
    valued: ['--since'],
  },
  { name: 'stations', synopsis: '', summary: 'stations on the station LAN, from their DHCP leases', args: { min: 0, max: 0 } },
  {
    name: 'end-session',
    synopsis: 'ID',
    summary: "end a session under way (see sessions --live): its VM is destroyed and replaced by a fresh clone; the station is told",
    args: { min: 1, max: 1 },
    admin: true,
  },
  { name: 'recycle', synopsis: 'VM', summary: 'destroy VM and replace it with a fresh clone (a session on it ends)', args: { min: 1, max: 1 }, admin: true },
  {
    name: 'drain',
    synopsis: 'POOL',
    summary: 'hand out no VM of POOL any more and do not refill it; sessions under way finish',
    details: 'Its clean VMs stay ready (undrain hands them out at once); resize POOL 0 removes them. Outlives restarts.',
    args: { min: 1, max: 1 },
    admin: true,
  },
  { name: 'undrain', synopsis: 'POOL', summary: 'serve stations from POOL again, and refill it', args: { min: 1, max: 1 }, admin: true },
  {
    name: 'resize',
    synopsis: 'POOL N',
    summary: 'keep N VMs in POOL (0 to 64, if the host has the memory); outlives restarts',
    details: "The config file's size applies again once someone changes it there.",
    args: { min: 2, max: 2 },
    admin: true,
  },
  {
    name: 'timeouts',
    synopsis: 'POOL [--idle S] [--max-session S] [--warning S] [--boot S]',
    summary: "set POOL's timeouts in seconds (idle_timeout, max_session, session_warning, boot_timeout); without options: show them",
    details: TIMEOUTS_HELP,
    args: { min: 1, max: 1 },
    valued: Object.keys(TIMEOUT_OPTIONS),
    admin: true,
  },
  {
    name: 'wipe',
    synopsis: '--yes',
    summary: 'emergency wipe: destroy every VM, delete every disk, end every session; the pools are then rebuilt from the golden images',
    args: { min: 0, max: 0 },
    switches: ['--yes'],
    admin: true,
  },
  {
    name: 'whitelist',
    synopsis: 'list | add ENTRY | remove ENTRY | set [ENTRY...]',
    summary: 'what the VMs may reach: example.org, *.example.org, 203.0.113.0/24; changes apply at once, sessions go on',
    details: 'list is open to group tabula; add, remove and set need root.',
    args: { min: 1, max: Number.POSITIVE_INFINITY },
  },
  {
    name: 'image',
    synopsis: 'list | import FILE [--name NAME] [--kernel FILE [--initrd FILE]] | use POOL NAME | rollback POOL',
    summary: "golden images: the store's images and who uses them; import one; switch a pool to one; switch it back",
    details:
      'list (open to group tabula): each image with its format, sizes, the pools cloning from it (current) or able\n' +
      'to go back to it (previous), and the running VMs backed by it.\n' +
      'import FILE: copies a qcow2 or raw image into the store (STATE_DIR/images) under NAME (default: its file\n' +
      "name), refused unless it is sound (format, qemu-img check, no backing file, room left above disk_reserve);\n" +
      '--kernel/--initrd: its own direct-boot kernel and initrd, copied beside it.\n' +
      'use POOL NAME: new clones of POOL come from NAME; sessions under way finish on the old image, clean VMs of it\n' +
      'are replaced one at a time. If clones of NAME fail to come up before two did, POOL goes back by itself.\n' +
      'rollback POOL: back to the image POOL used before. An image no pool uses any more is deleted once no VM is\n' +
      'backed by it. A switch holds until the pool\'s golden_image in the config file changes.',
    args: { min: 1, max: 3 },
    valued: ['--name', '--kernel', '--initrd'],
  },
  { name: 'reload', synopsis: '', summary: 're-read the config file (as SIGHUP does); a bad one is refused, naming line and key, and the running config stays', args: { min: 0, max: 0 }, admin: true },
  {
    name: 'factory-reset',
    synopsis: '[--keep-images] --yes',
    summary: 'erase settings, sessions and logs (and the golden images, unless --keep-images); the appliance then restarts',
    args: { min: 0, max: 0 },
    switches: ['--keep-images', '--yes'],
    admin: true,
  },
  {
    name: 'logs',
    synopsis: '[-f] [-n N]',
    summary: "the supervisor's journal (journalctl -u tabula-supervisor); -f follows, -n N shows the last N lines",
    args: { min: 0, max: 0 },
    switches: ['-f'],
    valued: ['-n'],
  },
];

export const EXIT_CODES = `Exit codes: 0 ok; 1 failure (the supervisor refused or failed); 2 usage (a bad command line,
or an argument the supervisor refused); 3 supervisor not running, or no system bus;
4 no such object (pool, VM, session, whitelist entry); 5 permission denied.`;

export function usage(): string {
  const lines = COMMANDS.map((c) => {
    const head = `${c.name} ${c.synopsis}`.trim();
    return head.length < 26 ? `  ${head.padEnd(26)}${c.summary}` : `  ${head}\n  ${''.padEnd(26)}${c.summary}`;
  });
  return `usage: tabulactl [--json] COMMAND [ARGS]\n\nCommands:\n${lines.join('\n')}\n\nOptions:\n  --json                    machine-readable output (every command)\n  -h, --help                this help; tabulactl COMMAND --help for one command\n\nReading is open to group "tabula"; commands that change anything need root (or polkit).\n${EXIT_CODES}`;
}

export function commandHelp(c: CommandSpec): string {
  const who = c.admin ? 'Needs root (or the polkit action org.tabula.supervisor1.*).' : '';
  return [`usage: tabulactl [--json] ${`${c.name} ${c.synopsis}`.trim()}`, '', c.summary, c.details ?? '', who, '', EXIT_CODES].filter((l, i, all) => l !== '' || all[i - 1] !== '').join('\n');
}

export type Parsed =
  | { readonly kind: 'help'; readonly text: string; readonly code: number }
  | {
      readonly kind: 'run';
      readonly command: CommandSpec;
      readonly args: readonly string[];
      readonly json: boolean;
      /** Switches present (value true) and valued options (their value). */
      readonly options: Readonly<Record<string, string | true>>;
    };

const usageError = (message: string) => new TabulaError('invalid-argument', message);

/** The command line → what to run. Throws invalid-argument (exit 2) naming what is wrong. */
export function parseCommandLine(argv: readonly string[]): Parsed {
  const json = argv.includes('--json');
  const rest = argv.filter((a) => a !== '--json');
  const help = rest.includes('--help') || rest.includes('-h');
  const name = rest.find((a) => !a.startsWith('-'));
  if (name === undefined) return help ? { kind: 'help', text: usage(), code: 0 } : { kind: 'help', text: usage(), code: 2 };
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) throw usageError(`unknown command "${name}"`);
  if (help) return { kind: 'help', text: commandHelp(command), code: 0 };
  const words = rest.slice(rest.indexOf(name) + 1);
  if (rest.indexOf(name) > 0) throw usageError(`${name}: options go after the command (${rest.slice(0, rest.indexOf(name)).join(' ')})`);
  const options: Record<string, string | true> = {};
  const args: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as string;
    if (command.valued?.includes(w)) {
      const value = words[i + 1];
      if (value === undefined || (value.startsWith('-') && !/^-\d+$/.test(value))) throw usageError(`${name}: ${w} needs a value`);
      options[w] = value;
      i++;
    } else if (command.switches?.includes(w)) {
      options[w] = true;
    } else if (w.startsWith('-') && !/^-\d+$/.test(w)) {
      throw usageError(`${name}: unknown option ${w}`);
    } else {
      args.push(w);
    }
  }
  if (args.length < command.args.min || args.length > command.args.max) {
    const n = command.args.max === 0 ? 'no arguments' : `${command.synopsis}`;
    throw usageError(`${name} takes ${n}${args.length > command.args.max ? `; unexpected: ${args.slice(command.args.max).join(' ')}` : ''}`);
  }
  return { kind: 'run', command, args, json, options };
}

/** A count given on the command line: digits only. */
export function parseCount(text: string, what: string): number {
  if (!/^\d{1,9}$/.test(text)) throw usageError(`${what} must be a whole number, not ${JSON.stringify(text)}`);
  return Number(text);
}

/** What the parser cannot see alone: options that exclude each other, values that must parse. Throws invalid-argument. */
export function checkOptions(p: Extract<Parsed, { kind: 'run' }>, now: number): void {
  const since = p.options['--since'];
  if (typeof since === 'string') parseSince(since, now);
  if (p.options['--csv'] === true && p.json) throw usageError('--csv and --json exclude each other');
  if (p.options['--live'] === true && (p.options['--csv'] === true || since !== undefined)) throw usageError('--csv and --since are for the session log, not --live');
  if (p.command.name === 'resize') parseCount(p.args[1] ?? '', 'the size');
  if (p.command.name === 'image') checkImageArgs(p);
  if (p.command.name === 'timeouts') timeoutChanges(p.options);
  const lines = p.options['-n'];
  if (typeof lines === 'string') parseCount(lines, '-n');
}

const IMAGE_ARGS: Record<string, { readonly args: number; readonly options: readonly string[] }> = {
  list: { args: 0, options: [] },
  import: { args: 1, options: ['--name', '--kernel', '--initrd'] },
  use: { args: 2, options: [] },
  rollback: { args: 1, options: [] },
};

function checkImageArgs(p: Extract<Parsed, { kind: 'run' }>): void {
  const [action = '', ...rest] = p.args;
  const spec = IMAGE_ARGS[action];
  if (spec === undefined) throw usageError(`image: expected list, import FILE, use POOL NAME or rollback POOL, not "${action}"`);
  if (rest.length !== spec.args) throw usageError(`image ${action} takes ${spec.args === 0 ? 'no arguments' : `${spec.args} argument${spec.args > 1 ? 's' : ''}`}`);
  const stray = Object.keys(p.options).find((o) => !spec.options.includes(o));
  if (stray !== undefined) throw usageError(`image ${action}: ${stray} is for image import`);
  if (p.options['--initrd'] !== undefined && p.options['--kernel'] === undefined) throw usageError('image import: --initrd needs --kernel');
}
