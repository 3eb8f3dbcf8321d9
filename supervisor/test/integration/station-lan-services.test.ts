// The station LAN's DHCP and NTP servers, for real: the dnsmasq and chronyd
// services on a test station LAN (a bridge with 169.254.24.1/24 and three
// station namespaces, their static addresses removed), with busybox udhcpc and
// `chronyd -Q` (which only measures, never sets the clock) as the stations.
// Shows: a reserved station gets its address and name, another one an address
// from the range; leases() lists them; NTP answers; bad configurations are
// refused (by validation, by `dnsmasq --test`, or by the daemon not coming up,
// then rolled back) while the old daemons keep serving; stop() leaves no
// process. Everything made here is removed in teardown.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import { ChronyService } from '../../src/adapters/chrony-service.js';
import { DnsmasqService } from '../../src/adapters/dnsmasq-service.js';
import { TabulaError } from '../../src/domain/errors.js';
import { stationLanProblems, type StationLanSpec } from '../../src/domain/station-lan.js';
import { run, TEST_PREFIX } from '../helpers/env.js';
import { makeStationLan } from '../helpers/station-lan.js';
import { dhcp, mac, ntpQuery, udhcpcScript } from '../helpers/station-dhcp.js';
import { MemoryLogger } from '../fakes/memory-logger.js';

const RESERVED = '169.254.24.20';
const URL = 'http://169.254.24.1:8080/';

async function processesOf(dir: string): Promise<string[]> {
  const { stdout } = await run('pgrep', ['-af', dir]).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter((l) => l.trim() !== '');
}

async function pidOf(configFile: string): Promise<string | undefined> {
  return (await processesOf(configFile))[0]?.split(' ')[0];
}

async function rejection(p: Promise<unknown>): Promise<TabulaError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof TabulaError) return e;
    throw e;
  }
  throw new Error('apply did not refuse');
}

t.test('station LAN services: DHCP with reservations, NTP, refusal and rollback', async (t) => {
  const lan = await makeStationLan('lans', 3);
  const dir = await mkdtemp(join(tmpdir(), `tabula-${TEST_PREFIX}-lans-`));
  const logger = new MemoryLogger();
  let skipValidation = false;
  const validate = (s: StationLanSpec) => (skipValidation ? [] : stationLanProblems(s));
  const dns = new DnsmasqService({ dir: join(dir, 'dhcp'), logger, validate });
  const ntp = new ChronyService({ dir: join(dir, 'ntp'), logger, validate });
  t.teardown(async () => {
    await dns.stop().catch(() => undefined);
    await ntp.stop().catch(() => undefined);
    for (const line of await processesOf(dir)) await run('kill', ['-9', line.split(' ')[0] ?? '']).catch(() => undefined);
    const left = await lan.cleanup();
    await rm(dir, { recursive: true, force: true });
    if (left.length > 0) throw new Error(`station LAN not removed: ${left.join(', ')}`);
  });

  const [a, b, c] = lan.stations;
  if (a === undefined || b === undefined || c === undefined) throw new Error('three stations expected');
  for (const s of lan.stations) await run('ip', ['-n', s.netns, 'addr', 'flush', 'dev', 'eth0']);
  const script = await udhcpcScript(dir);
  const macA = await mac(a);
  const macB = await mac(b);

  const spec: StationLanSpec = {
    interface: lan.bridge,
    address: lan.address,
    prefixLength: 24,
    dhcpRange: { from: '169.254.24.100', to: '169.254.24.150' },
    leaseSeconds: 600,
    reservations: [{ mac: macA.toUpperCase(), address: RESERVED, name: 'kiosk-a' }],
    ntp: true,
    httpPort: 8080,
  };
  t.same(stationLanProblems(spec), [], 'the spec is valid');
  await dns.apply(spec);
  await ntp.apply(spec);
  t.ok(dns.running, 'dnsmasq runs');
  t.ok(ntp.running, 'chronyd runs');
  const dnsConfig = join(dir, 'dhcp', 'dnsmasq.conf');
  const ntpConfig = join(dir, 'ntp', 'chrony.conf');

  await t.test('each station gets its lease: the reserved one its address and name, the other one from the range', async (t) => {
    const ra = await dhcp(a, script, 'ignored-name');
    t.ok(ra.offer, `station a got a lease (${ra.output})`);
    t.equal(ra.offer?.ip, RESERVED, 'the reserved address');
    t.equal(ra.offer?.hostname, 'kiosk-a', 'the reservation name as its host name');
    t.equal(ra.offer?.mask, '24');
    t.equal(ra.offer?.router, '', 'no gateway');
    t.equal(ra.offer?.ntpsrv, lan.address, 'NTP server: the server');
    t.equal(Buffer.from(ra.offer?.opt224 ?? '', 'hex').toString(), URL, 'option 224: the HTTP endpoint, sent unasked');

    const rb = await dhcp(b, script, 'kiosk-b');
    t.ok(rb.offer, `station b got a lease (${rb.output})`);
    const n = Number(rb.offer?.ip.split('.')[3]);
    t.ok(rb.offer?.ip.startsWith('169.254.24.') && n >= 100 && n <= 150, `from the range: ${String(rb.offer?.ip)}`);
    t.match((await run('ip', ['-n', b.netns, '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout, `inet ${String(rb.offer?.ip)}/24`, 'the station took the address');

    const leases = await dns.leases();
    t.match(leases, [
      { mac: macA, address: RESERVED, name: 'kiosk-a' },
      { mac: macB, address: rb.offer?.ip, name: 'kiosk-b' },
    ]);
    t.equal(leases.length, 2);
    for (const l of leases) t.ok(l.expiresAt > Date.now() + 500_000 && l.expiresAt <= Date.now() + 601_000, `lease of ${l.address} runs ~600 s`);
  });

  await t.test('the NTP server answers a station, and never sets the clock', async (t) => {
    t.match(await ntpQuery(a), /System clock wrong by -?[0-9.]+ seconds \(ignored\)/);
    const [line] = await processesOf(ntpConfig);
    t.match(line, / -x /, 'chronyd runs with -x');
  });

  await t.test('refused configurations leave the running dnsmasq and its file alone', async (t) => {
    const pid = await pidOf(dnsConfig);
    const before = await readFile(dnsConfig, 'utf8');
    const badMac = { ...spec, reservations: [...spec.reservations, { mac: 'zz:54:00:00:00:01', address: '169.254.24.21', name: 'kiosk-z' }] };

    let e = await rejection(dns.apply(badMac));
    t.equal(e.code, 'config-invalid');
    t.match(e.message, /reservation 2: MAC "zz:54:00:00:00:01" is not of the form/, 'validation names it');

    skipValidation = true;
    e = await rejection(dns.apply(badMac));
    t.equal(e.code, 'config-invalid');
    t.match(e.message, /dnsmasq refuses the station LAN configuration: .*bad hex constant at line \d+/, 'so does dnsmasq --test');

    e = await rejection(dns.apply({ ...spec, dhcpRange: { from: '169.254.24.100', to: '10.0.0.9' } }));
    t.equal(e.code, 'config-invalid');
    t.match(e.message, /inconsistent DHCP range/);
    skipValidation = false;

    t.equal(await pidOf(dnsConfig), pid, 'the same dnsmasq runs');
    t.equal(await readFile(dnsConfig, 'utf8'), before, 'with the same file');
    t.same((await readdir(join(dir, 'dhcp'))).filter((f) => f.endsWith('.new')), [], 'no candidate file left');
  });

  await t.test('a configuration dnsmasq does not come up with is rolled back', async (t) => {
    const before = await readFile(dnsConfig, 'utf8');
    // Valid, and fine for dnsmasq --test, but there is no such interface.
    const e = await rejection(dns.apply({ ...spec, interface: 'tbr-lans-gone' }));
    t.equal(e.code, 'internal');
    t.match(e.message, /previous one is back.*unknown interface tbr-lans-gone/);
    t.ok(dns.running, 'dnsmasq runs again');
    t.equal(await readFile(dnsConfig, 'utf8'), before, 'with the previous file');
    t.equal((await processesOf(dnsConfig)).length, 1, 'one dnsmasq');

    const rc = await dhcp(c, script, 'kiosk-c');
    t.ok(rc.offer, `a third station still gets a lease (${rc.output})`);
    t.match(rc.offer?.ip, /^169\.254\.24\.1([0-4][0-9]|50)$/, 'from the range');
    const leases = await dns.leases();
    t.equal(leases.length, 3, 'three leases');
    t.match(leases, [{ address: RESERVED }, {}, {}]);
    t.ok(leases.some((l) => l.address === rc.offer?.ip && l.name === 'kiosk-c'), 'station c among them');
  });

  await t.test('a configuration chronyd does not come up with is rolled back', async (t) => {
    const e = await rejection(ntp.apply({ ...spec, interface: 'tbr-lans-gone' }));
    t.equal(e.code, 'internal');
    t.match(e.message, /previous one is back.*Could not open NTP socket/);
    t.ok(ntp.running, 'chronyd runs again');
    t.match(await readFile(ntpConfig, 'utf8'), `binddevice ${lan.bridge}\n`, 'with the previous file');
    t.match(await ntpQuery(c), /System clock wrong by -?[0-9.]+ seconds \(ignored\)/, 'and answers');

    const e2 = await rejection(ntp.apply({ ...spec, ntpUpstream: ['ntp.example.org'], interface: 'x y' }));
    t.equal(e2.code, 'config-invalid', 'a bad interface name never reaches chronyd');
  });

  await t.test('the same spec again changes nothing; ntp = false stops chronyd', async (t) => {
    const pid = await pidOf(dnsConfig);
    await dns.apply(spec);
    t.equal(await pidOf(dnsConfig), pid, 'no restart');
    await ntp.apply({ ...spec, ntp: false });
    t.notOk(ntp.running);
    t.same(await processesOf(ntpConfig), [], 'no chronyd');
  });

  await t.test('a dnsmasq left running by a supervisor that died is ended before a new one starts', async (t) => {
    await dns.stop();
    // What a killed supervisor leaves: its dnsmasq, and the record of its PID.
    const leftover = spawn('dnsmasq', ['--keep-in-foreground', '--log-facility=-', `--conf-file=${dnsConfig}`], { stdio: 'ignore' });
    t.teardown(() => leftover.kill('SIGKILL'));
    const ended = new Promise<string>((resolve) => leftover.once('exit', () => resolve('ended')));
    await writeFile(`${dnsConfig}.supervised-pid`, `${String(leftover.pid)}\n`);
    for (let i = 0; i < 100 && (await processesOf(dnsConfig)).length === 0; i++) await delay(50);
    t.equal(await pidOf(dnsConfig), String(leftover.pid), 'the leftover serves');

    const next = new DnsmasqService({ dir: join(dir, 'dhcp'), logger });
    t.teardown(() => next.stop());
    await next.apply(spec);
    const pids = (await processesOf(dnsConfig)).map((l) => l.split(' ')[0]);
    t.equal(pids.length, 1, 'one dnsmasq');
    t.not(pids[0], String(leftover.pid), 'the new one');
    // dnsmasq exits 0 on SIGTERM.
    t.equal(await Promise.race([ended, delay(5_000, 'still running')]), 'ended', 'the leftover was ended');
    t.match(logger.find('process-leftover-ended'), [{ fields: { service: 'dnsmasq', pid: leftover.pid } }]);
    const rb = await dhcp(b, script, 'kiosk-b');
    t.ok(rb.offer, `and it serves (${rb.output})`);
    await next.stop();
  });

  await t.test('after stop() no process is left', async (t) => {
    await dns.stop();
    await ntp.stop();
    t.notOk(dns.running);
    t.notOk(ntp.running);
    t.same(await processesOf(dir), []);
    t.same(logger.find('process-exited'), [], 'no daemon died by itself');
  });
});
