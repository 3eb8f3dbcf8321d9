import t from 'tap';
import { TabulaError } from '../../src/domain/errors.js';
import type { FirewallSpec } from '../../src/domain/firewall.js';
import { CHAINS, renderFirewall, renderFirewallRemoval } from '../../src/render/firewall.js';
import { parseFlow } from '../../src/adapters/conntrack.js';

function spec(over: Partial<FirewallSpec> = {}): FirewallSpec {
  return {
    table: 'tabula',
    lanInterface: 'tabula-lan',
    lanAddress: '169.254.24.1',
    spicePort: 5906,
    consoleAddress: '169.254.25.1',
    consolePorts: [{ from: 5920, to: 5923 }],
    forwards: [],
    ...over,
  };
}

type Obj = Record<string, unknown>;
interface Rule {
  family: string;
  table: string;
  chain: string;
  expr: Obj[];
  comment?: string;
}

function commands(s: FirewallSpec): Obj[] {
  return renderFirewall(s).nftables as Obj[];
}

function rules(s: FirewallSpec, chain?: string): Rule[] {
  return commands(s)
    .map((c) => (c['add'] as Obj | undefined)?.['rule'] as Rule | undefined)
    .filter((r): r is Rule => r !== undefined && (chain === undefined || r.chain === chain));
}

/** The value a rule compares `left` with, found by the shape of `left`. */
function matched(rule: Rule, left: unknown): unknown {
  for (const e of rule.expr) {
    const m = e['match'] as { op: string; left: unknown; right: unknown } | undefined;
    if (m !== undefined && JSON.stringify(m.left) === JSON.stringify(left)) return m.right;
  }
  return undefined;
}

const IIFNAME = { meta: { key: 'iifname' } };
const SADDR = { payload: { protocol: 'ip', field: 'saddr' } };
const DADDR = { payload: { protocol: 'ip', field: 'daddr' } };
const DPORT = { payload: { protocol: 'tcp', field: 'dport' } };
const CT_STATUS = { ct: { key: 'status' } };

function verdict(rule: Rule): string | undefined {
  return ['accept', 'drop'].find((v) => rule.expr.some((e) => v in e)) ?? (rule.expr.some((e) => 'dnat' in e) ? 'dnat' : undefined);
}

t.test('one transaction: the table is created, emptied and refilled, nothing outside it is named', async (t) => {
  const cmds = commands(spec({ table: 'tabula_x', forwards: [{ station: '169.254.24.10', consolePort: 5920 }] }));
  t.same(cmds[0], { metainfo: { json_schema_version: 1 } });
  t.same(cmds[1], { add: { table: { family: 'inet', name: 'tabula_x' } } });
  t.same(cmds[2], { flush: { table: { family: 'inet', name: 'tabula_x' } } });
  const chains = cmds.slice(3, 6).map((c) => (c['add'] as Obj)['chain']);
  t.same(chains, [
    { family: 'inet', table: 'tabula_x', name: CHAINS.early, type: 'filter', hook: 'prerouting', prio: -300, policy: 'accept' },
    { family: 'inet', table: 'tabula_x', name: CHAINS.forwards, type: 'nat', hook: 'prerouting', prio: -100, policy: 'accept' },
    { family: 'inet', table: 'tabula_x', name: CHAINS.guard, type: 'filter', hook: 'input', prio: 0, policy: 'accept' },
  ]);
  for (const c of cmds.slice(6)) {
    const rule = (c['add'] as Obj | undefined)?.['rule'] as Rule | undefined;
    t.ok(rule, 'only rules follow the chains');
    t.equal(rule?.family, 'inet');
    t.equal(rule?.table, 'tabula_x');
    t.same(matched(rule as Rule, IIFNAME), 'tabula-lan', 'every rule is about the LAN interface only');
    t.type(rule?.comment, 'string', 'every rule says why it is there');
  }
  t.notMatch(JSON.stringify(cmds), /"(delete|flush)":\{"(ruleset|chain|rule)"/, 'never flushes or deletes beyond the table');
});

t.test('a forward matches only its station, on the LAN address and Spice port, and leads to its console', async (t) => {
  const fw = rules(spec({ forwards: [{ station: '169.254.24.10', consolePort: 5921 }] }), CHAINS.forwards);
  t.equal(fw.length, 1);
  const r = fw[0] as Rule;
  t.equal(matched(r, SADDR), '169.254.24.10');
  t.equal(matched(r, DADDR), '169.254.24.1');
  t.equal(matched(r, DPORT), 5906);
  t.same(r.expr.at(-1), { dnat: { family: 'ip', addr: '169.254.25.1', port: 5921 } });
  t.equal(r.comment, 'station 169.254.24.10');
  t.same(rules(spec(), CHAINS.forwards), [], 'no forward, no DNAT rule');
});

t.test('guard: loopback dropped before conntrack, consoles only for what a forward let in', async (t) => {
  const early = rules(spec(), CHAINS.early);
  t.equal(early.length, 1);
  t.same(matched(early[0] as Rule, DADDR), { prefix: { addr: '127.0.0.0', len: 8 } });
  t.equal(verdict(early[0] as Rule), 'drop');

  const guard = rules(spec({ consolePorts: [{ from: 5930, to: 5931 }, { from: 5920, to: 5923 }, { from: 5922, to: 5925 }, { from: 5940, to: 5940 }] }), CHAINS.guard);
  t.same(
    guard.map((r) => verdict(r)),
    ['drop', 'accept', 'drop', 'drop'],
  );
  const [invalid, letIn, byAddress, byPort] = guard as [Rule, Rule, Rule, Rule];
  t.same(invalid.expr[1], { match: { op: 'in', left: { ct: { key: 'state' } }, right: 'invalid' } }, 'a permanent ct rule keeps conntrack in use');
  // `ct status != dnat` would compare the whole status word and drop every forwarded flow.
  t.same(letIn.expr[1], { match: { op: 'in', left: CT_STATUS, right: 'dnat' } }, 'DNATed flows tested by flag');
  t.equal(matched(byAddress, DADDR), '169.254.25.1');
  t.same(matched(byPort, DPORT), { set: [{ range: [5920, 5925] }, { range: [5930, 5931] }, 5940] }, 'ranges sorted and merged');
  t.same(
    guard.filter((r) => verdict(r) === 'drop').map((r) => r.expr.some((e) => 'counter' in e)),
    [true, true, true],
    'drops are counted',
  );
  t.same(rules(spec({ consolePorts: [] }), CHAINS.guard).length, 3, 'no console ports, no empty set');
});

t.test('deterministic: same state, same document, whatever the order it came in', async (t) => {
  const forwards = [
    { station: '169.254.24.100', consolePort: 5923 },
    { station: '169.254.24.9', consolePort: 5920 },
    { station: '169.254.24.10', consolePort: 5921 },
    { station: '10.0.0.2', consolePort: 5922 },
  ];
  const a = JSON.stringify(renderFirewall(spec({ forwards })));
  const b = JSON.stringify(renderFirewall(spec({ forwards: [...forwards].reverse() })));
  const c = JSON.stringify(renderFirewall(spec({ forwards: [forwards[2]!, forwards[0]!, forwards[3]!, forwards[1]!, forwards[2]!] })));
  t.equal(a, b);
  t.equal(a, c, 'an exact duplicate collapses');
  t.same(
    rules(spec({ forwards }), CHAINS.forwards).map((r) => matched(r, SADDR)),
    ['10.0.0.2', '169.254.24.9', '169.254.24.10', '169.254.24.100'],
    'sorted by address, numerically',
  );
});

const INVALID = { constructor: TabulaError, code: 'invalid-argument' };

t.test('hostile stations and ports never become rules', async (t) => {
  const bad = ['', ' 169.254.24.10', '169.254.24.10 ', '@stations', '$lan', '010.1.1.1', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.4/0', '::1', '::ffff:1.2.3.4', 'station-a', '1.2.3.4"; flush ruleset; "', '１.2.3.4'];
  for (const station of bad) {
    t.throws(() => renderFirewall(spec({ forwards: [{ station, consolePort: 5920 }] })), INVALID, JSON.stringify(station));
  }
  t.throws(() => renderFirewall(spec({ forwards: [{ station: 42 as unknown as string, consolePort: 5920 }] })), INVALID, 'not a string');
  for (const consolePort of [22, 5906, 5924, 5920.5, Number.NaN]) {
    t.throws(() => renderFirewall(spec({ forwards: [{ station: '169.254.24.10', consolePort }] })), INVALID, `port ${consolePort} is not a console`);
  }
  t.throws(
    () => renderFirewall(spec({ forwards: [{ station: '169.254.24.10', consolePort: 5920 }, { station: '169.254.24.10', consolePort: 5921 }] })),
    INVALID,
    'one station, two consoles',
  );
});

t.test('hostile names stay values: JSON carries them, no nft syntax is parsed from them', async (t) => {
  const evil = 'x" } ; flush ruleset ; { "';
  const doc = renderFirewall(spec({ table: evil, lanInterface: evil }));
  const again = JSON.parse(JSON.stringify(doc)) as { nftables: Obj[] };
  t.same(again, doc);
  t.same((again.nftables[1] as Obj)['add'], { table: { family: 'inet', name: evil } });
  for (const r of rules(spec({ table: evil, lanInterface: evil }))) t.equal(matched(r, IIFNAME), evil);
});

t.test('removal: add then delete, so an absent table is no error', async (t) => {
  t.same(renderFirewallRemoval('tabula_x').nftables, [
    { metainfo: { json_schema_version: 1 } },
    { add: { table: { family: 'inet', name: 'tabula_x' } } },
    { delete: { table: { family: 'inet', name: 'tabula_x' } } },
  ]);
});

t.test('conntrack lines: original side is the station, reply side the console', async (t) => {
  const line = 'tcp      6 431999 ESTABLISHED src=169.254.24.10 dst=169.254.24.1 sport=41234 dport=5906 src=169.254.25.1 dst=169.254.24.10 sport=5920 dport=41234 [ASSURED] mark=0 use=1';
  t.same(parseFlow(line), { original: { source: '169.254.24.10', sourcePort: 41234 }, reply: { source: '169.254.25.1', sourcePort: 5920 } });
  t.equal(parseFlow(''), undefined);
  t.equal(parseFlow('conntrack v1.4.7 (conntrack-tools): 1 flow entries have been shown.'), undefined);
});
