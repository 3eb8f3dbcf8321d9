/**
 * The station's side of the signal-port protocol (docs/station-protocol.md):
 * what the server's lines mean, and the lines a station sends. Pure.
 */

/** The line a v0 (original) server repeats once the Spice forward is open. */
export const V0_CONNECT_NOW = 'RULE ADDED, CONNECT NOW';

export interface PoolOffer {
  readonly name: string;
  readonly ready: number;
  readonly size: number;
}

export type ServerMessage =
  | { readonly kind: 'welcome'; readonly pools: readonly PoolOffer[]; readonly defaultPool: string }
  | { readonly kind: 'queued'; readonly position: number }
  | {
      readonly kind: 'ready';
      readonly session: string;
      readonly vm: string;
      readonly host: string;
      readonly port: number;
      /** Absent when the pool's consoles take no ticket (console_tickets = false: a pool v0 stations share). */
      readonly ticket?: string;
      readonly expiresS: number;
    }
  | { readonly kind: 'connected'; readonly session: string }
  /** `reason: 'none'` calls a countdown off. */
  | { readonly kind: 'warn'; readonly session: string; readonly reason: string; readonly seconds: number }
  | { readonly kind: 'ended'; readonly session: string; readonly reason: string }
  | { readonly kind: 'ping' }
  | { readonly kind: 'pong' }
  | { readonly kind: 'error'; readonly status: number; readonly reason: string; readonly detail: string }
  /** A v0 server: its forward is open, start the viewer on the configured Spice port. */
  | { readonly kind: 'v0-connect-now' }
  | { readonly kind: 'unknown'; readonly line: string };

/** `key=value` fields; undefined when a word is not one (a value with a space in it is no value). */
function fields(rest: string[]): Map<string, string> | undefined {
  const m = new Map<string, string>();
  for (const f of rest) {
    const i = f.indexOf('=');
    if (i <= 0) return undefined;
    m.set(f.slice(0, i), f.slice(i + 1));
  }
  return m;
}

const NAME = /^[A-Za-z0-9._-]{1,64}$/;

function parsePools(v: string | undefined): PoolOffer[] | undefined {
  if (v === undefined) return undefined;
  if (v === '') return [];
  const pools: PoolOffer[] = [];
  for (const item of v.split(',')) {
    const m = /^([A-Za-z0-9._-]{1,32}):(\d+)\/(\d+)$/.exec(item);
    if (!m) return undefined;
    pools.push({ name: m[1]!, ready: Number(m[2]), size: Number(m[3]) });
  }
  return pools;
}

function count(v: string | undefined): number | undefined {
  return v !== undefined && /^\d{1,9}$/.test(v) ? Number(v) : undefined;
}

/** One line from the server; anything malformed is `unknown` (the caller decides how bad that is). */
export function parseServerLine(line: string): ServerMessage {
  if (line.includes(V0_CONNECT_NOW)) return { kind: 'v0-connect-now' };
  const [word, ...rest] = line.split(' ');
  const unknown = { kind: 'unknown', line } as const;
  if (word === 'ERR') {
    const status = count(rest[0]);
    if (status === undefined) return unknown;
    return { kind: 'error', status, reason: rest[1] ?? '', detail: rest.slice(2).join(' ') };
  }
  if (word === 'PING' || word === 'PONG') return { kind: word === 'PING' ? 'ping' : 'pong' };
  const f = fields(rest);
  if (f === undefined) return unknown;
  switch (word) {
    case 'WELCOME': {
      const pools = parsePools(f.get('pools'));
      return pools ? { kind: 'welcome', pools, defaultPool: f.get('default') ?? pools[0]?.name ?? '' } : unknown;
    }
    case 'QUEUED': {
      const position = count(f.get('position'));
      return position === undefined ? unknown : { kind: 'queued', position };
    }
    case 'READY': {
      const [session, vm, host, ticket] = ['session', 'vm', 'host', 'ticket'].map((k) => f.get(k));
      const port = count(f.get('port'));
      const expiresS = count(f.get('expires')) ?? 10;
      if (!session || !vm || !host || port === undefined || port < 1 || port > 65535) return unknown;
      // The ticket goes into a file and the host into the viewer's arguments: nothing but plain tokens.
      if (!NAME.test(session) || !/^[0-9A-Za-z.:-]{1,64}$/.test(host) || (ticket !== undefined && !/^[\x21-\x7e]{1,128}$/.test(ticket))) return unknown;
      return ticket === undefined ? { kind: 'ready', session, vm, host, port, expiresS } : { kind: 'ready', session, vm, host, port, ticket, expiresS };
    }
    case 'CONNECTED': {
      const session = f.get('session');
      return session ? { kind: 'connected', session } : unknown;
    }
    case 'WARN': {
      const session = f.get('session');
      const reason = f.get('reason');
      if (!session || !reason) return unknown;
      return { kind: 'warn', session, reason, seconds: count(f.get('seconds')) ?? 0 };
    }
    case 'ENDED': {
      const session = f.get('session');
      return session ? { kind: 'ended', session, reason: f.get('reason') ?? 'unknown' } : unknown;
    }
    default:
      return unknown;
  }
}

/** The station's lines. Names are checked by the config; nothing here can inject a field. */
export const stationLines = {
  hello: (station: string) => `TABULA/1 HELLO station=${station}`,
  request: (pool: string) => (pool === '' ? 'REQUEST' : `REQUEST pool=${pool}`),
  resume: (session: string) => `RESUME session=${session}`,
  input: () => 'INPUT',
  end: () => 'END',
  ping: () => 'PING',
  pong: () => 'PONG',
} as const;

/** Whether an ERR means "ask again later" rather than "this will not work". */
export function isTransient(status: number, reason: string): boolean {
  return status === 503 || status === 408 || (status === 429 && reason === 'too-many-connections');
}

/** Exponential backoff between attempts to reach the server, capped. */
export function backoffS(attempt: number, minS: number, maxS: number): number {
  return Math.min(maxS, minS * 2 ** Math.max(0, Math.min(attempt, 16)));
}
