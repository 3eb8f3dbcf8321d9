// The supervisor serves the station LAN: a station namespace gets its lease
// (a reserved one its own address and name) from the supervisor's dnsmasq and
// its time from the supervisor's chrony; a bad reload is refused and the old
// daemons keep serving; when the supervisor stops, so do they.
import { join } from 'node:path';
import t from 'tap';
import { makeTestRoot, run, testConfig, waitFor, writeConfig } from '../helpers/env.js';
import { dhcp, mac, ntpQuery, udhcpcScript } from '../helpers/station-dhcp.js';
import { makeStationLan, removeStationWorld, stationsSection, type Station } from '../helpers/station-lan.js';
import { SupervisorProcess, tabulactl } from '../helpers/supervisor-process.js';

const root = await makeTestRoot('lan');
const lan = await makeStationLan('lan', 2);
const [A, B] = lan.stations as [Station, Station];
for (const s of lan.stations) await run('ip', ['-n', s.netns, 'addr', 'flush', 'dev', 'eth0']);
const script = await udhcpcScript(root.dir);
const macA = await mac(A);
const stationsWith = (extra: string) =>
  stationsSection(lan, 6).replace('dhcp = false', 'dhcp = true').replace('ntp = false', 'ntp = true') + `\nhttp_port = 8080\n${extra}`;
const reservation = (m: string) => `\n[[stations.reservation]]\nmac = "${m}"\naddress = "169.254.24.20"\nname = "kiosk-a"\n`;
const configText = (extra: string) => testConfig(root, [{ name: 'it-lan', size: 0, spicePortBase: 5990 }]).replace('[[pool]]', `${stationsWith(extra)}\n\n[[pool]]`);
const config = await writeConfig(root, configText(reservation(macA)));
const supervisor = new SupervisorProcess(config);

t.teardown(async () => {
  await supervisor.stop();
  const { stdout } = await run('pgrep', ['-f', root.dir]).catch(() => ({ stdout: '' }));
  for (const pid of stdout.split('\n').filter(Boolean)) await run('kill', ['-9', pid]).catch(() => undefined);
  await root.cleanup();
  await removeStationWorld(lan);
});

async function daemons(): Promise<string[]> {
  const { stdout } = await run('pgrep', ['-af', join(root.dir, 'state/lan')]).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter(Boolean);
}

t.test('a station gets its lease and its time from the supervisor', async (t) => {
  await supervisor.waitForLine(/event=signal-port-open/, 30_000);
  await waitFor('dnsmasq and chronyd up', async () => ((await daemons()).length >= 2 ? true : undefined), 30_000);
  const a = await dhcp(A, script, 'kiosk-a');
  t.equal(a.offer?.ip, '169.254.24.20', `the reserved station gets its address (${a.output.split('\n').slice(-1)[0]})`);
  t.equal(a.offer?.ntpsrv, '169.254.24.1', 'and the server as its NTP server');
  t.equal(a.offer?.router, '', 'and no router: stations need none');
  const b = await dhcp(B, script, 'kiosk-b');
  t.match(b.offer?.ip ?? '', /^169\.254\.24\.(1\d\d|2[0-4]\d|250)$/, `another station gets one from the range (${b.offer?.ip})`);
  t.match(await ntpQuery(A), /System clock wrong by -?\d+\.\d+ seconds/, 'NTP answers the station');

  const listed = JSON.parse((await tabulactl('stations', '--json')).stdout) as Array<{ address: string; mac: string; name?: string; lastSeen: number }>;
  t.match(listed.find((s) => s.address === '169.254.24.20'), { mac: macA.toLowerCase(), name: 'kiosk-a' }, 'tabulactl stations: the reserved station, by name and MAC');
  t.ok(listed.some((s) => s.address === b.offer?.ip && s.name === 'kiosk-b'), 'and the other, by the name it sent');
  t.ok(listed.every((s) => Math.abs(Date.now() - s.lastSeen) < 60_000), 'both seen just now');
});

t.test('a reload with a bad reservation is refused; the old DHCP server goes on serving', async (t) => {
  const before = await daemons();
  await writeConfig(root, configText(reservation('52:54:zz:00:00:01')));
  const from = supervisor.mark();
  supervisor.signal('SIGHUP');
  const refused = await supervisor.waitForLine(/event=config-reload-refused/, 10_000, from);
  t.match(refused, /52:54:zz:00:00:01/, 'the refusal names the bad MAC');
  t.same(await daemons(), before, 'the same daemons run');
  await run('ip', ['-n', B.netns, 'addr', 'flush', 'dev', 'eth0']);
  t.ok((await dhcp(B, script, 'kiosk-b')).offer?.ip, 'and still hand out leases');
});

t.test('the daemons stop with the supervisor', async (t) => {
  await supervisor.stop();
  await waitFor('no daemon left', async () => ((await daemons()).length === 0 ? true : undefined), 15_000);
  t.pass('no dnsmasq or chronyd of the supervisor is left');
});
