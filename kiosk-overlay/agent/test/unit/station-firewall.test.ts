// The station firewall's text: what each chain lets through, for a server and
// ports other than the defaults (so nothing passes by matching a constant).
import t from 'tap';
import { StationError } from '../../src/domain/errors.js';
import { renderStationFirewall, renderStationLockdown, STATION_TABLE, stationFlows, type FirewallInput } from '../../src/render/station-firewall.js';

const CFG: FirewallInput = { serverAddress: '10.20.30.40', signalPort: 6905, spicePort: 6906, httpPort: 8088 };

/** The rule lines of one chain (comments and blank lines left out). */
function chain(text: string, name: string): string[] {
  const body = new RegExp(`chain ${name} \\{\\n([\\s\\S]*?)\\n  \\}`).exec(text)?.[1];
  if (body === undefined) throw new Error(`no chain ${name}`);
  return body
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

const text = renderStationFirewall(CFG);
const input = chain(text, 'input');
const output = chain(text, 'output');
const forward = chain(text, 'forward');

t.test('one table, replaced as a whole in one transaction', async (t) => {
  const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  t.same(lines.slice(0, 3), [`table inet ${STATION_TABLE}`, `delete table inet ${STATION_TABLE}`, `table inet ${STATION_TABLE} {`], 'create-if-missing, delete, define');
  t.same(text.match(/^(?:delete )?table .*$/gm), lines.slice(0, 3), 'no other table');
  t.notMatch(text, /\bflush ruleset\b/, 'never touches anything outside its table');
  t.equal(STATION_TABLE, 'tabula_station');
});

t.test('every base chain drops by default; forward has no rule at all', async (t) => {
  t.equal(input[0], 'type filter hook input priority filter; policy drop;');
  t.equal(output[0], 'type filter hook output priority filter; policy drop;');
  t.same(forward, ['type filter hook forward priority filter; policy drop;']);
  t.equal(input.at(-1), 'counter drop comment "refused"', 'input ends with a counted drop');
  t.equal(output.at(-1), 'counter drop comment "refused"', 'output ends with a counted drop');
});

t.test('loopback, IPv6, invalid and established come first, in that order', async (t) => {
  t.same(input.slice(1, 5), [
    'iif lo accept comment "loopback"',
    'meta nfproto ipv6 counter drop comment "ipv6"',
    'ct state invalid counter drop comment "invalid"',
    'ct state established,related accept comment "established"',
  ]);
  t.same(output.slice(1, 5), [
    'oif lo accept comment "loopback"',
    'meta nfproto ipv6 counter drop comment "ipv6"',
    'ct state invalid counter drop comment "invalid"',
    'ct state established,related accept comment "established"',
  ]);
});

t.test('inbound: DHCP replies and nothing else', async (t) => {
  t.same(input.slice(5, -1), ['udp sport 67 udp dport 68 counter accept comment "dhcp-reply"']);
});

t.test('outbound: DHCP, NTP and the three TCP ports, to the server only', async (t) => {
  t.same(output.slice(5, -1), [
    'ip daddr { 255.255.255.255, 10.20.30.40 } udp sport 68 udp dport 67 counter accept comment "dhcp"',
    'ip daddr 10.20.30.40 udp dport 123 counter accept comment "ntp"',
    'ip daddr 10.20.30.40 tcp dport 8088 counter accept comment "http"',
    'ip daddr 10.20.30.40 tcp dport 6905 counter accept comment "signal"',
    'ip daddr 10.20.30.40 tcp dport 6906 counter accept comment "spice"',
  ]);
  t.notMatch(text, /\b(5905|5906|169\.254\.24\.1)\b/, 'no default leaks in');
  t.notMatch(text, /dport (22|53)\b/, 'no SSH, no DNS');
});

t.test('every rule says why', async (t) => {
  const lines = text.split('\n');
  lines.forEach((l, i) => {
    if (!/\b(accept|drop)\b/.test(l) || /policy drop/.test(l)) return;
    t.match(lines[i - 1] ?? '', /^\s*#/, `a comment above: ${l.trim()}`);
  });
  t.ok(
    lines.filter((l) => l.trim().startsWith('#')).every((l) => l.length <= 92),
    'comments are wrapped',
  );
});

t.test('the flows as data match the rules', async (t) => {
  const flows = stationFlows(CFG);
  t.same(
    flows.map((f) => [f.name, f.direction, f.protocol, f.port]),
    [
      ['dhcp-reply', 'in', 'udp', 68],
      ['dhcp', 'out', 'udp', 67],
      ['ntp', 'out', 'udp', 123],
      ['http', 'out', 'tcp', 8088],
      ['signal', 'out', 'tcp', 6905],
      ['spice', 'out', 'tcp', 6906],
    ],
  );
  for (const f of flows) t.match(text, `comment "${f.name}"`, `rule ${f.name} is rendered`);
  t.ok(flows.every((f) => f.why.length > 20), 'each flow says why');
});

t.test('a value that is not an address or a port is refused, not rendered', async (t) => {
  for (const serverAddress of ['server.lan', '10.0.0.256', '10.0.0', '010.0.0.1', '1.2.3.4 accept', '1.2.3.4; flush ruleset', '', '255.255.255.255', '0.0.0.0', '127.0.0.1']) {
    t.throws(() => renderStationFirewall({ ...CFG, serverAddress }), StationError, `server ${JSON.stringify(serverAddress)}`);
  }
  for (const port of [0, 65536, 80.5, NaN, -1]) {
    t.throws(() => renderStationFirewall({ ...CFG, spicePort: port }), { code: 'config-invalid' }, `spice port ${port}`);
  }
});

t.test('the lockdown: the same table, loopback only', async (t) => {
  const lock = renderStationLockdown('station.conf line 3: bad\nserver_ip');
  t.match(lock, `delete table inet ${STATION_TABLE}\n`, 'replaces the normal table in one transaction');
  t.same(chain(lock, 'input').slice(1), ['iif lo accept comment "loopback"', 'counter drop comment "lockdown"']);
  t.same(chain(lock, 'output').slice(1), ['oif lo accept comment "loopback"', 'counter drop comment "lockdown"']);
  t.notMatch(lock, /^server_ip/m, 'the reason stays inside one comment line');
});

t.test('no server known (before the first lease): DHCP only', async (t) => {
  const dhcpOnly = renderStationFirewall({ ...CFG, serverAddress: undefined });
  t.same(chain(dhcpOnly, 'input').slice(5, -1), ['udp sport 67 udp dport 68 counter accept comment "dhcp-reply"'], 'DHCP replies come in');
  t.same(chain(dhcpOnly, 'output').slice(5, -1), ['ip daddr 255.255.255.255 udp sport 68 udp dport 67 counter accept comment "dhcp"'], 'DHCP goes out, to broadcast only');
  t.same(chain(dhcpOnly, 'output').slice(0, 5), output.slice(0, 5), 'the same loopback, IPv6, invalid and established rules');
  t.equal(chain(dhcpOnly, 'output').at(-1), 'counter drop comment "refused"');
  t.notMatch(dhcpOnly, /dport (123|8088|6905|6906)\b/, 'no NTP, HTTP, signal or Spice rule');
  t.match(dhcpOnly, /^# Tabula station firewall, generated from the station config: no server known yet, DHCP only\.$/m);
  t.same(
    stationFlows({ ...CFG, serverAddress: undefined }).map((f) => f.name),
    ['dhcp-reply', 'dhcp'],
  );
});
