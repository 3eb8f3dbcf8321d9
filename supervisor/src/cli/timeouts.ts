import { timeoutsDict } from '../api/dbus/timeouts.js';
import { TabulaError } from '../domain/errors.js';
import { checkTimeouts, describeBounds, TIMEOUT_BOUNDS, TIMEOUT_KEYS, type PoolTimeouts, type TimeoutKey } from '../domain/pool-timeouts.js';
import type { SupervisorClient } from './client.js';
import { table, type PoolView } from './format.js';

/** `tabulactl timeouts`' options, by the config keys they set. */
export const TIMEOUT_OPTIONS: Readonly<Record<string, TimeoutKey>> = { '--idle': 'idle_timeout', '--max-session': 'max_session', '--warning': 'session_warning', '--boot': 'boot_timeout' };

const MEANING: Readonly<Record<TimeoutKey, string>> = {
  idle_timeout: 'no input for S seconds ends a session (v1 stations report input)',
  max_session: 'no session lasts longer than S seconds',
  session_warning: 'the station counts down S seconds before a limit ends its session',
  boot_timeout: 'a clone not up within S seconds is given up on',
};

export const TIMEOUTS_HELP = [
  ...Object.entries(TIMEOUT_OPTIONS).map(([option, key]) => `${option} S: ${MEANING[key]}; ${describeBounds(TIMEOUT_BOUNDS[key])}.`),
  'The limits apply to sessions under way too, a boot timeout to boots from now on. Each holds across restarts',
  "until that key changes in the config file; setting the file's value again forgets it. Showing them is open to group tabula.",
].join('\n');

/**
 * The timeouts the command line sets (none: it only shows them), checked as
 * the supervisor would check them. Throws invalid-argument (exit 2) naming
 * the option or the key and its bounds.
 */
export function timeoutChanges(options: Readonly<Record<string, string | true>>): Partial<PoolTimeouts> {
  const changes: Record<string, number> = {};
  for (const [option, key] of Object.entries(TIMEOUT_OPTIONS)) {
    const text = options[option];
    if (typeof text !== 'string') continue;
    if (!/^\d{1,9}(\.\d{1,3})?$/.test(text)) throw new TabulaError('invalid-argument', `${option} must be a number of seconds, not ${JSON.stringify(text)}`);
    changes[key] = Number(text);
  }
  return Object.keys(changes).length === 0 ? {} : checkTimeouts(changes);
}

/** Seconds for people: 0 is "off" (for the limits). */
function seconds(key: TimeoutKey, v: number): string {
  return v === 0 && key !== 'boot_timeout' ? 'off' : `${v}s`;
}

/** Each pool's timeouts in force, as a table. */
export function formatTimeouts(pools: readonly PoolView[]): string {
  const known = pools.flatMap((p) => (p.timeouts === undefined ? [] : [[p.name, p.timeouts] as const]));
  if (known.length === 0) return '';
  return table([['POOL', 'IDLE', 'MAX-SESSION', 'WARNING', 'BOOT'], ...known.map(([name, t]) => [name, ...TIMEOUT_KEYS.map((k) => seconds(k, t[k]))])]);
}

/** `timeouts POOL [--idle S] …`: sets those given, or shows the pool's. */
export async function timeoutsCommand(c: SupervisorClient, pool: string, options: Readonly<Record<string, string | true>>): Promise<{ json: unknown; human: string }> {
  const changes = timeoutChanges(options);
  if (Object.keys(changes).length > 0) {
    await c.pool(pool, 'SetTimeouts', 'a{sv}', [timeoutsDict(changes)]);
    const said = Object.entries(changes).map(([k, v]) => `${k} ${v}s`).join(', ');
    return { json: { pool, timeouts: changes }, human: `${pool}: ${said} (also for sessions under way; kept across restarts)\n` };
  }
  const { pools } = await c.status();
  const found = pools.find((p) => p.name === pool);
  if (found === undefined) throw new TabulaError('not-found', `no pool named "${pool}"`);
  return { json: { pool, timeouts: found.timeouts ?? {} }, human: formatTimeouts([found]) };
}
