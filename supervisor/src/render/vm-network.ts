import { TabulaError } from '../domain/errors.js';
import { isIpv4 } from '../domain/firewall.js';
import type { VmNetworkSpec } from '../domain/vm-network.js';
import { ALWAYS_FORBIDDEN, cidrHas, formatCidr, mergeCidrs, parseCidr, parseWhitelistEntry } from '../domain/whitelist.js';

export type { VmNetworkSpec } from '../domain/vm-network.js';

/** Names inside the VM table; fixed, so any version of Tabula replaces what another left. */
export const VM_SETS = {
  /** Whitelisted ranges (interval set), replaced live by {@link renderWhitelistUpdate}. */
  allow: 'allow4',
  /** Addresses of whitelisted names, filled by the VMs' dnsmasq (`nftset`), each with a timeout. */
  resolved: 'resolved4',
  /** Ranges the VMs never reach, checked before any accept. */
  forbidden: 'forbidden4',
  /** One element per VM address that was blocked, with a packet counter. */
  blocked: 'blocked4',
} as const;

export const VM_CHAINS = { forward: 'forward', input: 'input', blocked: 'blocked', postrouting: 'postrouting' } as const;

/** What blocked packets are logged with (kernel log, rate-limited). */
export const BLOCKED_LOG_PREFIX = 'tabula-blocked ';
const LOG_RATE_PER_MINUTE = 10;
/** More than any VM subnet we accept (a /16): a full set only stops new VMs being counted, never the drop. */
const BLOCKED_SET_SIZE = 65536;

const FAMILY = 'inet';
const TABLE_NAME = /^[a-z][a-z0-9_]{0,31}$/;
const INTERFACE_NAME = /^[A-Za-z0-9_.-]{1,15}$/;

interface Rule {
  readonly chain: string;
  readonly expr: unknown[];
  readonly comment: string;
}

/**
 * The whole VM table as one `nft -j -f` document: the table is created if
 * missing, deleted and created again, so the kernel takes all of it or none,
 * and nothing outside it is touched. Deleting the table also empties
 * `resolved4` (VMs re-learn addresses at their next lookup) and the per-VM
 * blocked counters: apply it at start-up and on changes of the network itself,
 * and use {@link renderWhitelistUpdate} for whitelist changes.
 *
 * What the VMs (everything arriving on `bridge`) may do:
 * - reach the server only for DHCP (udp 67) and DNS (udp/tcp 53 to
 *   `serverAddress`); nothing else on the server (signal port, metrics, Spice,
 *   other interfaces' addresses), and nothing of the station LAN;
 * - never reach each other. Between two taps of one bridge, packets are
 *   bridged, not routed: the `iifname == oifname == bridge` rule sees them only
 *   through br_netfilter (`net.bridge.bridge-nf-call-iptables=1` in the
 *   bridge's network namespace). Bridge port isolation on the taps is the
 *   layer-2 guard (it also stops ARP games); this rule is the one that counts;
 * - reach `allow4` (whitelisted ranges) and `resolved4` (addresses the VMs'
 *   resolver handed out for whitelisted names; each new connection to one
 *   restarts its timeout, so an address in use never expires under a VM),
 *   unless in `forbidden4` (checked first: a whitelisted name resolving to the
 *   station LAN or loopback does not open it);
 * - nothing from outside reaches a VM except replies.
 * Every other packet from a VM is counted in its element of `blocked4`,
 * logged (`tabula-blocked `, 10 a minute in all) and dropped.
 */
export function renderVmNetwork(spec: VmNetworkSpec): { nftables: unknown[] } {
  const v = validate(spec);
  const table = { family: FAMILY, name: spec.table };
  const fromVms = eq({ meta: { key: 'iifname' } }, spec.bridge);
  const subnet = prefix(v.subnet);
  const established = { match: { op: 'in', left: { ct: { key: 'state' } }, right: ['established', 'related'] } };
  const toBlocked = { goto: { target: VM_CHAINS.blocked } };

  const rules: Rule[] = [
    // -- forward: what the VMs reach beyond the server
    {
      chain: VM_CHAINS.forward,
      expr: [fromVms, eq({ meta: { key: 'oifname' } }, spec.bridge), toBlocked],
      comment: 'VMs never reach each other',
    },
    {
      chain: VM_CHAINS.forward,
      expr: [eq({ meta: { key: 'oifname' } }, spec.bridge), established, { accept: null }],
      comment: 'replies to the VMs',
    },
    {
      chain: VM_CHAINS.forward,
      expr: [eq({ meta: { key: 'oifname' } }, spec.bridge), { counter: null }, { drop: null }],
      comment: 'nothing else reaches a VM',
    },
    {
      // Before any per-VM counting: a forged source would be counted against another VM.
      chain: VM_CHAINS.forward,
      expr: [fromVms, ne(ip('saddr'), subnet), { counter: null }, { drop: null }],
      comment: 'VMs send only from the VM subnet',
    },
    {
      chain: VM_CHAINS.forward,
      expr: [fromVms, established, { accept: null }],
      comment: 'connections already let through',
    },
    {
      chain: VM_CHAINS.forward,
      expr: [fromVms, eq(ip('daddr'), `@${VM_SETS.forbidden}`), toBlocked],
      comment: 'never the server networks, whatever the whitelist or DNS says',
    },
    {
      chain: VM_CHAINS.forward,
      expr: [fromVms, eq(ip('daddr'), `@${VM_SETS.allow}`), { accept: null }],
      comment: 'whitelisted ranges',
    },
    {
      chain: VM_CHAINS.forward,
      expr: [
        fromVms,
        eq(ip('daddr'), `@${VM_SETS.resolved}`),
        // Re-adding an element (as dnsmasq does at each lookup) does not restart its timeout; use does.
        { set: { op: 'update', elem: ip('daddr'), set: `@${VM_SETS.resolved}` } },
        { accept: null },
      ],
      comment: 'whitelisted names, as resolved for the VMs',
    },
    { chain: VM_CHAINS.forward, expr: [fromVms, toBlocked], comment: 'everything else' },
    // -- input: what the VMs reach on the server itself
    {
      chain: VM_CHAINS.input,
      expr: [
        fromVms,
        eq(ip('daddr'), { set: ['255.255.255.255', spec.serverAddress] }),
        eq(udp('sport'), 68),
        eq(udp('dport'), 67),
        { accept: null },
      ],
      comment: 'DHCP',
    },
    {
      chain: VM_CHAINS.input,
      expr: [fromVms, eq(ip('saddr'), subnet), eq(ip('daddr'), spec.serverAddress), eq({ meta: { key: 'l4proto' } }, { set: ['udp', 'tcp'] }), eq({ payload: { protocol: 'th', field: 'dport' } }, 53), { accept: null }],
      comment: 'DNS',
    },
    { chain: VM_CHAINS.input, expr: [fromVms, toBlocked], comment: 'nothing else of the server' },
    // -- blocked: count per VM, log a few, drop
    {
      chain: VM_CHAINS.blocked,
      expr: [
        eq(ip('saddr'), subnet),
        { set: { op: 'update', elem: ip('saddr'), set: `@${VM_SETS.blocked}` } },
        { limit: { rate: LOG_RATE_PER_MINUTE, per: 'minute' } },
        { log: { prefix: BLOCKED_LOG_PREFIX } },
      ],
      comment: 'count per VM, log a few',
    },
    { chain: VM_CHAINS.blocked, expr: [{ counter: null }, { drop: null }], comment: 'blocked' },
    ...(spec.masquerade
      ? [
          {
            chain: VM_CHAINS.postrouting,
            expr: [eq(ip('saddr'), subnet), ne({ meta: { key: 'oifname' } }, spec.bridge), { masquerade: null }],
            comment: 'VMs go out with the server address',
          },
        ]
      : []),
  ];

  return {
    nftables: [
      { metainfo: { json_schema_version: 1 } },
      { add: { table } },
      { delete: { table } },
      { add: { table } },
      {
        add: {
          set: { family: FAMILY, table: spec.table, name: VM_SETS.allow, type: 'ipv4_addr', flags: ['interval'], ...elements(v.allow) },
        },
      },
      {
        add: {
          set: { family: FAMILY, table: spec.table, name: VM_SETS.resolved, type: 'ipv4_addr', flags: ['timeout'], timeout: spec.resolvedTimeout },
        },
      },
      {
        add: {
          set: { family: FAMILY, table: spec.table, name: VM_SETS.forbidden, type: 'ipv4_addr', flags: ['interval'], ...elements(v.forbidden) },
        },
      },
      {
        add: {
          set: {
            family: FAMILY,
            table: spec.table,
            name: VM_SETS.blocked,
            type: 'ipv4_addr',
            size: BLOCKED_SET_SIZE,
            stmt: [{ counter: null }],
          },
        },
      },
      // Priorities: filter (0) for both filters, srcnat (100) for the masquerade.
      { add: { chain: { family: FAMILY, table: spec.table, name: VM_CHAINS.forward, type: 'filter', hook: 'forward', prio: 0, policy: 'accept' } } },
      { add: { chain: { family: FAMILY, table: spec.table, name: VM_CHAINS.input, type: 'filter', hook: 'input', prio: 0, policy: 'accept' } } },
      { add: { chain: { family: FAMILY, table: spec.table, name: VM_CHAINS.blocked } } },
      ...(spec.masquerade
        ? [{ add: { chain: { family: FAMILY, table: spec.table, name: VM_CHAINS.postrouting, type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } } }]
        : []),
      ...rules.map((r) => ({ add: { rule: { family: FAMILY, table: spec.table, chain: r.chain, expr: r.expr, comment: r.comment } } })),
    ],
  };
}

/**
 * A whitelist change, live: `allow4` emptied and refilled from `spec.allow` in
 * one transaction, nothing else of the table touched, so sessions and their
 * connections carry on and `resolved4` keeps what the resolver learnt.
 * With `forgetResolved`, `resolved4` is emptied in the same transaction: how a
 * removed name is closed at once (its addresses are not known apart from
 * other names'; still-listed names are learnt again at their next lookup, which
 * the caller forces by reloading the resolver first). Connections already
 * established stay up either way.
 *
 * Validated exactly as {@link renderVmNetwork} validates, so a whitelist that
 * could not be applied whole is never applied in part.
 */
export function renderWhitelistUpdate(spec: VmNetworkSpec, options: { forgetResolved?: boolean } = {}): { nftables: unknown[] } {
  const v = validate(spec);
  const set = (name: string) => ({ family: FAMILY, table: spec.table, name });
  return {
    nftables: [
      { metainfo: { json_schema_version: 1 } },
      { flush: { set: set(VM_SETS.allow) } },
      ...(v.allow.length === 0 ? [] : [{ add: { element: { ...set(VM_SETS.allow), elem: v.allow.map(prefix) } } }]),
      ...(options.forgetResolved === true ? [{ flush: { set: set(VM_SETS.resolved) } }] : []),
    ],
  };
}

/**
 * Forgets the blocked counts of `addresses` (a VM's address handed to the next
 * VM starts from zero). Adding before deleting makes an address that was never
 * counted no error, in the same transaction.
 */
export function renderForgetBlocked(table: string, addresses: readonly string[]): { nftables: unknown[] } {
  checkVmTable(table);
  for (const a of addresses) {
    if (!isIpv4(a)) throw invalid(`${JSON.stringify(a)} is not an IPv4 address`);
  }
  const set = { family: FAMILY, table, name: VM_SETS.blocked };
  const elem = [...new Set(addresses)];
  if (elem.length === 0) return { nftables: [{ metainfo: { json_schema_version: 1 } }] };
  return { nftables: [{ metainfo: { json_schema_version: 1 } }, { add: { element: { ...set, elem } } }, { delete: { element: { ...set, elem } } }] };
}

/** The table document with `delete` instead of a body: removes it, and is no error when it is absent. */
export function renderVmNetworkRemoval(table: string): { nftables: unknown[] } {
  checkVmTable(table);
  const t = { family: FAMILY, name: table };
  return { nftables: [{ metainfo: { json_schema_version: 1 } }, { add: { table: t } }, { delete: { table: t } }] };
}

/**
 * Per-VM blocked packets from `nft -j list set inet TABLE blocked4`: address →
 * packets. Elements without a counter (none should be) count as 0; anything
 * that is not such a listing is refused.
 */
export function parseBlockedCounters(json: string): Map<string, number> {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw new TabulaError('firewall-failed', 'nft listed the blocked set as something other than JSON', { cause: e });
  }
  const objects = (doc as { nftables?: unknown }).nftables;
  if (!Array.isArray(objects)) throw new TabulaError('firewall-failed', 'nft listing has no "nftables" array');
  const set = objects.map((o) => (o as { set?: unknown }).set).find((s) => s !== undefined) as { elem?: unknown } | undefined;
  if (set === undefined) throw new TabulaError('firewall-failed', 'nft listing holds no set');
  const counts = new Map<string, number>();
  for (const raw of Array.isArray(set.elem) ? set.elem : []) {
    // With a counter: { elem: { val, counter: { packets, bytes } } }; without: the bare value.
    const wrapped = (raw as { elem?: { val?: unknown; counter?: { packets?: unknown } } }).elem;
    const address = wrapped === undefined ? raw : wrapped.val;
    if (!isIpv4(address)) continue;
    const packets = wrapped?.counter?.packets;
    counts.set(address, (counts.get(address) ?? 0) + (typeof packets === 'number' && Number.isFinite(packets) ? packets : 0));
  }
  return counts;
}

// ---- validation -------------------------------------------------------------------------------

interface Validated {
  readonly subnet: string;
  readonly allow: string[];
  readonly forbidden: string[];
}

function validate(spec: VmNetworkSpec): Validated {
  checkVmTable(spec.table);
  if (!INTERFACE_NAME.test(spec.bridge)) throw invalid(`VM bridge ${JSON.stringify(spec.bridge)} is not an interface name`);
  const subnet = parseCidr(spec.subnet);
  if (subnet === undefined) throw invalid(`VM subnet ${JSON.stringify(spec.subnet)} is not a canonical IPv4 range (a.b.c.d/len)`);
  if (subnet.length < 16 || subnet.length > 30) throw invalid(`VM subnet ${spec.subnet} must be a /16 to a /30`);
  if (!cidrHas(subnet, spec.serverAddress)) throw invalid(`server address ${JSON.stringify(spec.serverAddress)} is not in the VM subnet ${spec.subnet}`);
  if (!Number.isInteger(spec.resolvedTimeout) || spec.resolvedTimeout < 1 || spec.resolvedTimeout > 7 * 24 * 3600) {
    throw invalid(`resolved-address timeout ${String(spec.resolvedTimeout)} must be a whole number of seconds from 1 to a week`);
  }
  for (const f of spec.forbidden) {
    if (parseCidr(f) === undefined) throw invalid(`forbidden range ${JSON.stringify(f)} is not a canonical IPv4 range`);
  }
  const forbiddenForEntries = [formatCidr(subnet), ...spec.forbidden];
  const allow = spec.allow.map((text) => {
    const entry = parseWhitelistEntry(text, forbiddenForEntries);
    if (entry.kind !== 'cidr') throw invalid(`${JSON.stringify(text)} is a name: only address ranges go into ${VM_SETS.allow}`);
    return entry.cidr;
  });
  return { subnet: formatCidr(subnet), allow: mergeCidrs(allow), forbidden: mergeCidrs([...ALWAYS_FORBIDDEN, formatCidr(subnet), ...spec.forbidden]) };
}

/** Refuses a table name nft would misread (or that names no table of ours). */
export function checkVmTable(table: string): void {
  if (!TABLE_NAME.test(table)) throw invalid(`nftables table ${JSON.stringify(table)} must be 1-32 of a-z, 0-9 and _, starting with a letter`);
}

// ---- JSON pieces ------------------------------------------------------------------------------

function elements(cidrs: readonly string[]): { elem?: unknown[] } {
  return cidrs.length === 0 ? {} : { elem: cidrs.map(prefix) };
}

function prefix(cidr: string): unknown {
  const [addr, len] = cidr.split('/');
  return len === '32' ? addr : { prefix: { addr, len: Number(len) } };
}

function eq(left: unknown, right: unknown): unknown {
  return { match: { op: '==', left, right } };
}

function ne(left: unknown, right: unknown): unknown {
  return { match: { op: '!=', left, right } };
}

function ip(field: 'saddr' | 'daddr'): unknown {
  return { payload: { protocol: 'ip', field } };
}

function udp(field: 'sport' | 'dport'): unknown {
  return { payload: { protocol: 'udp', field } };
}

function invalid(message: string): TabulaError {
  return new TabulaError('invalid-argument', message);
}
