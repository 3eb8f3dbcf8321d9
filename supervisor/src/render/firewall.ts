import { TabulaError } from '../domain/errors.js';
import { ipv4Number, isIpv4, type FirewallSpec } from '../domain/firewall.js';

export type { FirewallSpec } from '../domain/firewall.js';

/** Chain names inside Tabula's table; fixed, so any version of Tabula replaces what another left. */
export const CHAINS = { early: 'early', forwards: 'forwards', guard: 'guard' } as const;

const FAMILY = 'inet';

/**
 * The whole table as one `nft -j -f` document. Applying it is a single
 * transaction: the table is created if missing, emptied and refilled, so the
 * kernel never sees a state between two rulesets and nothing outside the
 * table is touched.
 */
export function renderFirewall(spec: FirewallSpec): { nftables: unknown[] } {
  const table = { family: FAMILY, name: spec.table };
  const lan = eq({ meta: { key: 'iifname' } }, spec.lanInterface);
  const ports = portSet(spec.consolePorts);

  const rules: Array<{ chain: string; expr: unknown[]; comment: string }> = [
    {
      // Raw priority, before conntrack and NAT: with route_localnet ever switched on,
      // a station routing 127.0.0.0/8 here would otherwise reach every loopback service.
      chain: CHAINS.early,
      expr: [lan, eq(ip('daddr'), { prefix: { addr: '127.0.0.0', len: 8 } }), { counter: null }, { drop: null }],
      comment: 'stations never reach loopback',
    },
    ...forwards(spec).map((f) => ({
      chain: CHAINS.forwards,
      expr: [
        lan,
        eq(ip('saddr'), f.station),
        eq(ip('daddr'), spec.lanAddress),
        eq({ payload: { protocol: 'tcp', field: 'dport' } }, spec.spicePort),
        { dnat: { family: 'ip', addr: spec.consoleAddress, port: f.consolePort } },
      ],
      comment: `station ${f.station}`,
    })),
    {
      // Also what keeps conntrack in use in this namespace: without some ct rule, an
      // established console would be reset the moment its forward is removed.
      chain: CHAINS.guard,
      expr: [lan, { match: { op: 'in', left: { ct: { key: 'state' } }, right: 'invalid' } }, { counter: null }, { drop: null }],
      comment: 'keeps conntrack in use',
    },
    {
      // Accepting what a forward let in (rather than dropping "unless dnat") fails closed:
      // `ct status` on a packet without conntrack matches nothing, so it falls to the drops.
      // Tested as a flag: `ct status != dnat` compares the whole status word and is always true.
      chain: CHAINS.guard,
      expr: [lan, { match: { op: 'in', left: { ct: { key: 'status' } }, right: 'dnat' } }, { accept: null }],
      comment: 'let in by a forward',
    },
    {
      chain: CHAINS.guard,
      expr: [lan, eq(ip('daddr'), spec.consoleAddress), { counter: null }, { drop: null }],
      comment: 'consoles only through a forward',
    },
    ...(ports === undefined
      ? []
      : [
          {
            // Covers a console that listens on more than its own address.
            chain: CHAINS.guard,
            expr: [lan, eq({ payload: { protocol: 'tcp', field: 'dport' } }, ports), { counter: null }, { drop: null }],
            comment: 'console ports only through a forward',
          },
        ]),
  ];

  return {
    nftables: [
      { metainfo: { json_schema_version: 1 } },
      { add: { table } },
      { flush: { table } },
      // Priorities: raw (-300) before conntrack, dstnat (-100), filter (0) after NAT.
      chain(spec.table, CHAINS.early, 'filter', 'prerouting', -300),
      chain(spec.table, CHAINS.forwards, 'nat', 'prerouting', -100),
      chain(spec.table, CHAINS.guard, 'filter', 'input', 0),
      ...rules.map((r) => ({ add: { rule: { family: FAMILY, table: spec.table, chain: r.chain, expr: r.expr, comment: r.comment } } })),
    ],
  };
}

/** The table document with `delete` instead of `flush`: removes it, and is no error when it is absent. */
export function renderFirewallRemoval(table: string): { nftables: unknown[] } {
  const t = { family: FAMILY, name: table };
  return { nftables: [{ metainfo: { json_schema_version: 1 } }, { add: { table: t } }, { delete: { table: t } }] };
}

function forwards(spec: FirewallSpec): Array<{ station: string; consolePort: number }> {
  const byStation = new Map<string, number>();
  for (const f of spec.forwards) {
    if (!isIpv4(f.station)) {
      throw new TabulaError('invalid-argument', `station ${JSON.stringify(f.station)} is not an IPv4 address`);
    }
    // A forward is the one hole in the guard: it must lead to a console and nowhere else on the server.
    if (!Number.isInteger(f.consolePort) || !spec.consolePorts.some((r) => f.consolePort >= r.from && f.consolePort <= r.to)) {
      throw new TabulaError('invalid-argument', `console port ${String(f.consolePort)} for station ${f.station} is not a console port`);
    }
    const seen = byStation.get(f.station);
    // Only the first of two rules for one station would ever match: refuse rather than guess.
    if (seen !== undefined && seen !== f.consolePort) {
      throw new TabulaError('invalid-argument', `station ${f.station} would be forwarded to two consoles (${seen}, ${f.consolePort})`);
    }
    byStation.set(f.station, f.consolePort);
  }
  return [...byStation]
    .map(([station, consolePort]) => ({ station, consolePort }))
    .sort((a, b) => ipv4Number(a.station) - ipv4Number(b.station));
}

/** Ranges merged and sorted, so the same ports always render the same set. */
function portSet(ranges: FirewallSpec['consolePorts']): { set: unknown[] } | undefined {
  const sorted = [...ranges].sort((a, b) => a.from - b.from || a.to - b.to);
  const merged: Array<{ from: number; to: number }> = [];
  for (const r of sorted) {
    const last = merged[merged.length - 1];
    // An anonymous interval set refuses overlapping elements.
    if (last !== undefined && r.from <= last.to + 1) last.to = Math.max(last.to, r.to);
    else merged.push({ from: r.from, to: r.to });
  }
  if (merged.length === 0) return undefined;
  return { set: merged.map((r) => (r.from === r.to ? r.from : { range: [r.from, r.to] })) };
}

// Policy accept: the table guards the consoles only; everything else is another table's business.
function chain(table: string, name: string, type: 'filter' | 'nat', hook: 'prerouting' | 'input', prio: number): unknown {
  return { add: { chain: { family: FAMILY, table, name, type, hook, prio, policy: 'accept' } } };
}

function eq(left: unknown, right: unknown): unknown {
  return { match: { op: '==', left, right } };
}

function ip(field: 'saddr' | 'daddr'): unknown {
  return { payload: { protocol: 'ip', field } };
}
