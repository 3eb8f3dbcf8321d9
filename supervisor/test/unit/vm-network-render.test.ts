import t from 'tap';
import { TabulaError } from '../../src/domain/errors.js';
import type { VmNetworkSpec } from '../../src/domain/vm-network.js';
import { parseWhitelist } from '../../src/domain/whitelist.js';
import { renderDnsmasqVms, renderDnsmasqVmsServers, type DnsmasqVmsSpec } from '../../src/render/dnsmasq-vms.js';
import {
  BLOCKED_LOG_PREFIX,
  parseBlockedCounters,
  renderForgetBlocked,
  renderVmNetwork,
  renderVmNetworkRemoval,
  renderWhitelistUpdate,
  VM_CHAINS,
  VM_SETS,
} from '../../src/render/vm-network.js';

function spec(over: Partial<VmNetworkSpec> = {}): VmNetworkSpec {
  return {
    table: 'tabula_vm',
    bridge: 'tabula-vms',
    subnet: '10.88.0.0/24',
    serverAddress: '10.88.0.1',
    allow: ['203.0.113.0/24', '198.51.100.7/32'],
    forbidden: ['192.168.24.0/24'],
    resolvedTimeout: 3600,
    masquerade: true,
    ...over,
  };
}

type Obj = Record<string, unknown>;
interface Rule {
  family: string;
  table: string;
  chain: string;
  expr: Obj[];
  comment: string;
}

function commands(s: VmNetworkSpec): Obj[] {
  return renderVmNetwork(s).nftables as Obj[];
}

function added(s: VmNetworkSpec, kind: 'set' | 'chain' | 'rule'): Obj[] {
  return commands(s)
    .map((c) => (c['add'] as Obj | undefined)?.[kind] as Obj | undefined)
    .filter((x): x is Obj => x !== undefined);
}

function rules(s: VmNetworkSpec, chain: string): Rule[] {
  return (added(s, 'rule') as unknown as Rule[]).filter((r) => r.chain === chain);
}

function set(s: VmNetworkSpec, name: string): Obj {
  return added(s, 'set').find((x) => x['name'] === name) as Obj;
}

/** Is some match in `rule` `left op right`, compared as JSON? */
function has(rule: Rule, left: unknown, right: unknown, op = '=='): boolean {
  return rule.expr.some((e) => JSON.stringify(e['match']) === JSON.stringify({ op, left, right }));
}

const IIF = { meta: { key: 'iifname' } };
const OIF = { meta: { key: 'oifname' } };
const SADDR = { payload: { protocol: 'ip', field: 'saddr' } };
const DADDR = { payload: { protocol: 'ip', field: 'daddr' } };

function verdict(rule: Rule): string | undefined {
  for (const e of rule.expr) {
    if ('accept' in e) return 'accept';
    if ('drop' in e) return 'drop';
    if ('goto' in e) return `goto ${(e['goto'] as { target: string }).target}`;
    if ('masquerade' in e) return 'masquerade';
  }
  return undefined;
}

t.test('the table is one transaction: created, deleted, created again; nothing outside it named', async (t) => {
  const cmds = commands(spec());
  const table = { family: 'inet', name: 'tabula_vm' };
  t.same(cmds.slice(0, 4), [{ metainfo: { json_schema_version: 1 } }, { add: { table } }, { delete: { table } }, { add: { table } }]);
  for (const c of cmds.slice(4)) {
    const inner = Object.values(c['add'] as Obj)[0] as Obj;
    t.equal(inner['family'], 'inet');
    t.equal(inner['table'], 'tabula_vm');
  }
  t.notMatch(JSON.stringify(cmds.slice(4)), /"(delete|flush)"/, 'no delete or flush beyond the table');
  for (const r of added(spec(), 'rule') as unknown as Rule[]) t.type(r.comment, 'string', 'every rule says why it is there');
});

t.test('sets: whitelisted ranges, learnt addresses with a timeout, forbidden ranges, per-VM counters', async (t) => {
  const s = spec({ allow: ['203.0.113.0/24', '198.51.100.7', '203.0.113.64/26'] });
  t.same(set(s, VM_SETS.allow), {
    family: 'inet',
    table: 'tabula_vm',
    name: 'allow4',
    type: 'ipv4_addr',
    flags: ['interval'],
    elem: ['198.51.100.7', { prefix: { addr: '203.0.113.0', len: 24 } }],
  }, 'sorted, a range inside another left out (an interval set refuses overlaps)');
  t.same(set(s, VM_SETS.resolved), { family: 'inet', table: 'tabula_vm', name: 'resolved4', type: 'ipv4_addr', flags: ['timeout'], timeout: 3600 });
  t.same(
    (set(s, VM_SETS.forbidden)['elem'] as unknown[]).map((e) => (typeof e === 'string' ? e : `${(e as { prefix: { addr: string; len: number } }).prefix.addr}/${(e as { prefix: { len: number } }).prefix.len}`)),
    ['0.0.0.0/8', '10.88.0.0/24', '127.0.0.0/8', '169.254.0.0/16', '192.168.24.0/24', '224.0.0.0/4', '240.0.0.0/4'],
    'always-forbidden ranges, the VM subnet and the extra ones, merged',
  );
  t.same(set(s, VM_SETS.blocked), { family: 'inet', table: 'tabula_vm', name: 'blocked4', type: 'ipv4_addr', size: 65536, stmt: [{ counter: null }] });
  t.notOk('elem' in set(spec({ allow: [] }), VM_SETS.allow), 'an empty whitelist is an empty set');
  t.notMatch(JSON.stringify(set(s, VM_SETS.resolved)), /dynamic/, 'nft 1.0.6 refuses "dynamic" in JSON; it adds it itself for the update');
});

t.test('chains: forward and input filters, a blocked chain, masquerade only when asked', async (t) => {
  const chains = added(spec(), 'chain');
  t.same(chains, [
    { family: 'inet', table: 'tabula_vm', name: 'forward', type: 'filter', hook: 'forward', prio: 0, policy: 'accept' },
    { family: 'inet', table: 'tabula_vm', name: 'input', type: 'filter', hook: 'input', prio: 0, policy: 'accept' },
    { family: 'inet', table: 'tabula_vm', name: 'blocked' },
    { family: 'inet', table: 'tabula_vm', name: 'postrouting', type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' },
  ]);
  t.equal(added(spec({ masquerade: false }), 'chain').length, 3);
  t.same(rules(spec({ masquerade: false }), VM_CHAINS.postrouting), []);
  const [masq] = rules(spec(), VM_CHAINS.postrouting);
  t.ok(masq && has(masq, SADDR, { prefix: { addr: '10.88.0.0', len: 24 } }) && has(masq, OIF, 'tabula-vms', '!=') && verdict(masq) === 'masquerade');
});

t.test('forward: the order that makes it safe', async (t) => {
  const fwd = rules(spec(), VM_CHAINS.forward);
  const summary = fwd.map((r) => `${r.comment} → ${verdict(r)}`);
  t.same(summary, [
    'VMs never reach each other → goto blocked',
    'replies to the VMs → accept',
    'nothing else reaches a VM → drop',
    'VMs send only from the VM subnet → drop',
    'connections already let through → accept',
    'never the server networks, whatever the whitelist or DNS says → goto blocked',
    'whitelisted ranges → accept',
    'whitelisted names, as resolved for the VMs → accept',
    'everything else → goto blocked',
  ]);
  const [between, replies, inbound, spoofed, established, forbidden, ranges, names, rest] = fwd as [Rule, Rule, Rule, Rule, Rule, Rule, Rule, Rule, Rule];
  t.ok(has(between, IIF, 'tabula-vms') && has(between, OIF, 'tabula-vms'), 'in and out on the VM bridge');
  t.ok(has(replies, OIF, 'tabula-vms') && has(replies, { ct: { key: 'state' } }, ['established', 'related'], 'in'));
  t.ok(has(inbound, OIF, 'tabula-vms'));
  t.ok(has(spoofed, SADDR, { prefix: { addr: '10.88.0.0', len: 24 } }, '!='));
  t.ok(has(established, IIF, 'tabula-vms') && has(established, { ct: { key: 'state' } }, ['established', 'related'], 'in'));
  t.ok(has(forbidden, DADDR, '@forbidden4'), 'forbidden ranges are checked before any accept');
  t.ok(has(ranges, DADDR, '@allow4'));
  t.ok(has(names, DADDR, '@resolved4'));
  t.ok(names.expr.some((e) => JSON.stringify(e) === JSON.stringify({ set: { op: 'update', elem: DADDR, set: '@resolved4' } })), 'use restarts the timeout');
  t.ok(has(rest, IIF, 'tabula-vms'));
  for (const r of fwd.filter((r) => r !== replies && r !== inbound)) t.ok(has(r, IIF, 'tabula-vms'), `"${r.comment}" is about traffic from the VMs`);
});

t.test('input: DHCP and DNS to the server, nothing else', async (t) => {
  const input = rules(spec(), VM_CHAINS.input);
  t.same(input.map((r) => `${r.comment} → ${verdict(r)}`), ['DHCP → accept', 'DNS → accept', 'nothing else of the server → goto blocked']);
  const [dhcp, dns] = input as [Rule, Rule];
  t.ok(has(dhcp, DADDR, { set: ['255.255.255.255', '10.88.0.1'] }));
  t.ok(has(dhcp, { payload: { protocol: 'udp', field: 'dport' } }, 67) && has(dhcp, { payload: { protocol: 'udp', field: 'sport' } }, 68));
  t.ok(has(dns, DADDR, '10.88.0.1') && has(dns, SADDR, { prefix: { addr: '10.88.0.0', len: 24 } }));
  t.ok(has(dns, { meta: { key: 'l4proto' } }, { set: ['udp', 'tcp'] }) && has(dns, { payload: { protocol: 'th', field: 'dport' } }, 53));
  for (const r of input) t.ok(has(r, IIF, 'tabula-vms'));
});

t.test('blocked: counted per VM, logged at a limited rate, dropped', async (t) => {
  const [count, drop] = rules(spec(), VM_CHAINS.blocked) as [Rule, Rule];
  t.same(count.expr, [
    { match: { op: '==', left: SADDR, right: { prefix: { addr: '10.88.0.0', len: 24 } } } },
    { set: { op: 'update', elem: SADDR, set: '@blocked4' } },
    { limit: { rate: 10, per: 'minute' } },
    { log: { prefix: BLOCKED_LOG_PREFIX } },
  ]);
  t.equal(BLOCKED_LOG_PREFIX, 'tabula-blocked ');
  t.same(drop.expr, [{ counter: null }, { drop: null }]);
});

t.test('a spec that cannot be rendered whole is refused before nft sees it', async (t) => {
  const bad: Array<[Partial<VmNetworkSpec>, RegExp]> = [
    [{ table: 'Tabula-VM' }, /table/],
    [{ table: 'x; flush ruleset' }, /table/],
    [{ bridge: 'a-very-long-bridge-name' }, /interface name/],
    [{ bridge: 'br0"' }, /interface name/],
    [{ subnet: '10.88.0.1/24' }, /not a canonical/],
    [{ subnet: '10.0.0.0/8' }, /\/16 to a \/30/],
    [{ serverAddress: '10.89.0.1' }, /not in the VM subnet/],
    [{ allow: ['10.88.0.0/25'] }, /overlaps 10\.88\.0\.0\/24/],
    [{ allow: ['192.168.24.7'] }, /overlaps 192\.168\.24\.0\/24/],
    [{ allow: ['127.0.0.1'] }, /overlaps 127\.0\.0\.0\/8/],
    [{ allow: ['example.org'] }, /is a name/],
    [{ allow: ['203.0.113.7/24'] }, /did you mean 203\.0\.113\.0\/24/],
    [{ forbidden: ['192.168.24.1/24'] }, /forbidden range/],
    [{ resolvedTimeout: 0 }, /timeout/],
    [{ resolvedTimeout: 1.5 }, /timeout/],
  ];
  for (const [over, message] of bad) {
    for (const render of [() => renderVmNetwork(spec(over)), () => renderWhitelistUpdate(spec(over))]) {
      try {
        render();
        t.fail(`${JSON.stringify(over)} should be refused`);
      } catch (e) {
        t.ok(e instanceof TabulaError && e.code === 'invalid-argument', `${JSON.stringify(over)}: ${(e as Error).message}`);
        t.match((e as Error).message, message);
      }
    }
  }
});

t.test('a whitelist change touches allow4 only, unless learnt addresses are to be forgotten', async (t) => {
  const set4 = (name: string) => ({ family: 'inet', table: 'tabula_vm', name });
  t.same(renderWhitelistUpdate(spec({ allow: ['203.0.113.0/24', '198.51.100.7'] })).nftables, [
    { metainfo: { json_schema_version: 1 } },
    { flush: { set: set4('allow4') } },
    { add: { element: { ...set4('allow4'), elem: ['198.51.100.7', { prefix: { addr: '203.0.113.0', len: 24 } }] } } },
  ]);
  t.same(renderWhitelistUpdate(spec({ allow: [] }), { forgetResolved: true }).nftables, [
    { metainfo: { json_schema_version: 1 } },
    { flush: { set: set4('allow4') } },
    { flush: { set: set4('resolved4') } },
  ]);
  const touched = renderWhitelistUpdate(spec()).nftables.slice(1).map((c) => {
    const [verb, body] = Object.entries(c as Obj)[0] as [string, Obj];
    const [kind, what] = Object.entries(body)[0] as [string, Obj];
    return `${verb} ${kind} ${String(what['name'])}`;
  });
  t.same(touched, ['flush set allow4', 'add element allow4'], 'no table, chain, rule or other set');
});

t.test('forgetting blocked counts and removing the table', async (t) => {
  const blocked = { family: 'inet', table: 'tabula_vm', name: 'blocked4' };
  t.same(renderForgetBlocked('tabula_vm', ['10.88.0.10', '10.88.0.10', '10.88.0.11']).nftables, [
    { metainfo: { json_schema_version: 1 } },
    { add: { element: { ...blocked, elem: ['10.88.0.10', '10.88.0.11'] } } },
    { delete: { element: { ...blocked, elem: ['10.88.0.10', '10.88.0.11'] } } },
  ], 'added first, so an address never counted is no error');
  t.throws(() => renderForgetBlocked('tabula_vm', ['10.88.0.0/24']), /not an IPv4 address/);
  const table = { family: 'inet', name: 'tabula_vm' };
  t.same(renderVmNetworkRemoval('tabula_vm').nftables, [{ metainfo: { json_schema_version: 1 } }, { add: { table } }, { delete: { table } }]);
  t.throws(() => renderVmNetworkRemoval('bad name'), /table/);
});

t.test('parseBlockedCounters reads what nft 1.0.6 lists', async (t) => {
  // Captured from `nft -j list set inet tv blocked4` on the test machine.
  const listing = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
      {
        set: {
          family: 'inet',
          name: 'blocked4',
          table: 'tv',
          type: 'ipv4_addr',
          handle: 4,
          size: 65536,
          elem: [{ elem: { val: '10.0.0.2', counter: { packets: 3, bytes: 180 } } }, { elem: { val: '10.0.0.3', counter: { packets: 1, bytes: 60 } } }, '10.0.0.4'],
          stmt: [{ counter: null }],
        },
      },
    ],
  });
  t.same([...parseBlockedCounters(listing)], [
    ['10.0.0.2', 3],
    ['10.0.0.3', 1],
    ['10.0.0.4', 0],
  ]);
  const empty = JSON.stringify({ nftables: [{ metainfo: {} }, { set: { name: 'blocked4', stmt: [{ counter: null }] } }] });
  t.same([...parseBlockedCounters(empty)], [], 'an empty set has no "elem"');
  for (const bad of ['not json', '{}', JSON.stringify({ nftables: [{ metainfo: {} }] })]) {
    t.throws(() => parseBlockedCounters(bad), { code: 'firewall-failed' });
  }
});

// ---- dnsmasq ------------------------------------------------------------------------------------

function dnsmasqSpec(over: Partial<DnsmasqVmsSpec> = {}): DnsmasqVmsSpec {
  return {
    bridge: 'tabula-vms',
    subnet: '10.88.0.0/24',
    serverAddress: '10.88.0.1',
    leaseSeconds: 3600,
    upstreams: ['9.9.9.9'],
    table: 'tabula_vm',
    leaseFile: '/var/lib/tabula/vms.leases',
    serversFile: '/run/tabula/vms.servers',
    pidFile: '/run/tabula/dnsmasq-vms.pid',
    dnsTtl: 60,
    ...over,
  };
}

t.test('dnsmasq: the VM bridge only, whitelisted names through a servers file, their addresses into resolved4', async (t) => {
  t.equal(
    renderDnsmasqVms(dnsmasqSpec()),
    [
      '# Tabula: DHCP and DNS for the VMs on tabula-vms. Generated; changes are overwritten.',
      'interface=tabula-vms',
      'except-interface=lo',
      'bind-interfaces',
      'port=53',
      'no-resolv',
      'no-hosts',
      'servers-file=/run/tabula/vms.servers',
      'nftset=/#/4#inet#tabula_vm#resolved4',
      'max-ttl=60',
      'max-cache-ttl=60',
      'filter-AAAA',
      'dhcp-range=10.88.0.2,10.88.0.254,255.255.255.0,3600',
      'dhcp-option=option:router,10.88.0.1',
      'dhcp-option=option:dns-server,10.88.0.1',
      'dhcp-authoritative',
      'dhcp-ignore-names',
      'no-ping',
      'dhcp-leasefile=/var/lib/tabula/vms.leases',
      'pid-file=/run/tabula/dnsmasq-vms.pid',
      '',
    ].join('\n'),
  );
  const text = renderDnsmasqVms(dnsmasqSpec({ pidFile: undefined, logQueries: true, dhcpRange: { from: '10.88.0.100', to: '10.88.0.199' } }));
  t.match(text, /^pid-file=$/m, 'no PID file (never the system dnsmasq one)');
  t.match(text, /^log-queries$/m);
  t.match(text, /^dhcp-range=10\.88\.0\.100,10\.88\.0\.199,255\.255\.255\.0,3600$/m);
  t.match(renderDnsmasqVms(dnsmasqSpec({ serverAddress: '10.88.0.254' })), /^dhcp-range=10\.88\.0\.1,10\.88\.0\.253,/m, 'the server at the top: the range below it');
  t.match(renderDnsmasqVms(dnsmasqSpec({ subnet: '10.88.0.0/16', serverAddress: '10.88.0.1' })), /^dhcp-range=10\.88\.0\.2,10\.88\.255\.254,255\.255\.0\.0,3600$/m);
});

t.test('dnsmasq: every value validated', async (t) => {
  const bad: Array<[Partial<DnsmasqVmsSpec>, RegExp]> = [
    [{ bridge: 'tabula-vms\nserver=1.2.3.4' }, /interface name/],
    [{ bridge: '' }, /interface name/],
    [{ subnet: '10.88.0.0/8' }, /canonical|\/16/],
    [{ serverAddress: '10.88.0.0' }, /host address/],
    [{ serverAddress: '10.88.0.255' }, /host address/],
    [{ serverAddress: '10.89.0.1' }, /host address/],
    [{ dhcpRange: { from: '10.88.0.1', to: '10.88.0.50' } }, /holds the server address/],
    [{ dhcpRange: { from: '10.88.0.50', to: '10.88.0.10' } }, /lowest first/],
    [{ dhcpRange: { from: '10.88.0.10', to: '10.88.1.10' } }, /host addresses of/],
    [{ dhcpRange: { from: '10.88.0.10', to: 'x' } }, /two IPv4 addresses/],
    [{ leaseSeconds: 60 }, /lease time/],
    [{ dnsTtl: 0 }, /TTL/],
    [{ table: 'tabula vm' }, /table/],
    [{ leaseFile: 'relative/leases' }, /absolute path/],
    [{ leaseFile: '/var/lib/tabula/my leases' }, /absolute path/],
    [{ serversFile: '/run/tabula/a"b' }, /absolute path/],
    [{ serversFile: '/run/tabula/x\nserver=8.8.8.8' }, /absolute path/],
    [{ pidFile: '/run/a#b' }, /absolute path/],
  ];
  for (const [over, message] of bad) {
    t.throws(() => renderDnsmasqVms(dnsmasqSpec(over)), { code: 'invalid-argument', message }, JSON.stringify(over));
  }
});

t.test('dnsmasq servers file: NXDOMAIN by default, exact names exact, wildcards with their bare name', async (t) => {
  const list = parseWhitelist(['allowed.test', '*.wild.test', '203.0.113.0/24', 'www.portal.test', 'portal.test']);
  t.equal(
    renderDnsmasqVmsServers(['198.51.100.53', '198.51.100.54#5353'], list),
    [
      '# Tabula: the names the VMs may resolve. Generated; changes are overwritten. Re-read on SIGHUP.',
      '# Everything not named below: NXDOMAIN.',
      'server=/#/',
      'server=/allowed.test/198.51.100.53',
      'server=/allowed.test/198.51.100.54#5353',
      'server=/*.allowed.test/',
      'server=/portal.test/198.51.100.53',
      'server=/portal.test/198.51.100.54#5353',
      'server=/*.portal.test/',
      'server=/www.portal.test/198.51.100.53',
      'server=/www.portal.test/198.51.100.54#5353',
      'server=/*.www.portal.test/',
      'server=/wild.test/198.51.100.53',
      'server=/wild.test/198.51.100.54#5353',
      '',
    ].join('\n'),
  );
  const covered = renderDnsmasqVmsServers(['9.9.9.9'], parseWhitelist(['*.example.org', 'example.org', 'www.example.org', '*.a.example.org', 'other.example']));
  t.same(covered.split('\n').filter((l) => l.startsWith('server=/') && l !== 'server=/#/'), [
    'server=/other.example/9.9.9.9',
    'server=/*.other.example/',
    'server=/example.org/9.9.9.9',
  ], 'entries inside a wildcard add nothing (and never take its subdomains back)');
  t.equal(renderDnsmasqVmsServers([], parseWhitelist(['203.0.113.0/24'])).split('\n').filter((l) => l.startsWith('server=')).join(), 'server=/#/', 'no names: nothing resolves');
  t.throws(() => renderDnsmasqVmsServers([], parseWhitelist(['a.example'])), { code: 'invalid-argument', message: /upstream/ });
  for (const upstream of ['9.9.9.9 ', '9.9.9.9\nserver=/#/1.1.1.1', 'dns.example', '9.9.9.9#0', '9.9.9.9#70000', '0.0.0.0', '9.9.9.9@eth0']) {
    t.throws(() => renderDnsmasqVmsServers([upstream], []), { code: 'invalid-argument', message: /upstream DNS server/ }, JSON.stringify(upstream));
  }
});
