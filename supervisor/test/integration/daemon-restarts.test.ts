// libvirtd, libvirt-dbus and dbus-daemon restarted under a live session: the supervisor
// reports itself degraded meanwhile and tells stations to try again; the
// session's VM keeps running, bound to its station; once the daemon is back
// the supervisor re-reads libvirt, carries on, and heals the pool.
import { join } from 'node:path';
import t from 'tap';
import { makeTestRoot, REPO, run, testConfig, waitFor, writeConfig, TEST_PREFIX } from '../helpers/env.js';
import { domains } from '../helpers/invariants.js';
import { makeStationLan, removeStationWorld, stationsSection, type Station } from '../helpers/station-lan.js';
import { status, SupervisorProcess, waitForClean } from '../helpers/supervisor-process.js';
import { connectV1 } from '../helpers/v1-client.js';
import { qemuPid, removeDomains } from '../helpers/virsh.js';

const POOL = `${TEST_PREFIX}-rst`;
const PREFIX = `tabula-${POOL}-`;
const root = await makeTestRoot('rst');
const lan = await makeStationLan('rst', 2);
const [A, B] = lan.stations as [Station, Station];
const config = await writeConfig(root, testConfig(root, [{ name: POOL, size: 2, spicePortBase: 5960, consoleTickets: false }]).replace('[[pool]]', `${stationsSection(lan, 6)}\n\n[[pool]]`));
const supervisor = new SupervisorProcess(config);
const DAEMONS = join(REPO, 'ci/daemons.sh');

t.teardown(async () => {
  // Whatever happened, the daemons are up again for the tests after this one.
  await run('bash', [DAEMONS, 'up']).catch(() => undefined);
  await A.killAll();
  await B.killAll();
  await supervisor.stop();
  await removeDomains(PREFIX);
  await root.cleanup();
  await removeStationWorld(lan);
});

/** A v0 station holding a plain TCP connection to its console as its Spice client. */
function seedStation(station: Station) {
  const script = `exec 3< <(exec nc ${lan.address} 5905)
while IFS= read -r line <&3; do
  case "$line" in *"RULE ADDED, CONNECT NOW"*) exec nc ${lan.address} 5906 ;; esac
done`;
  return station.spawn(['bash', '-c', script]);
}

/** What a station asking now is told (v0: it says nothing and reads). */
async function askNow(station: Station): Promise<string> {
  const c = await connectV1(station, { host: lan.address });
  try {
    return await c.next(/^(ERR|RULE ADDED)/, 10_000).catch((e: Error) => e.message);
  } finally {
    await c.kill();
  }
}

async function stateIs(state: string): Promise<true | undefined> {
  return (await status()).state === state ? true : undefined;
}

for (const daemon of ['libvirtd', 'libvirt-dbus', 'dbus'] as const) {
  t.test(`${daemon} restarted during a live session: degraded meanwhile, the session survives, the pool heals`, async (t) => {
    // A failed case must not leave its session to the next one.
    t.teardown(() => A.killAll());
    await waitForClean(POOL, 2);
    await supervisor.waitForLine(/event=signal-port-open/, 30_000);
    const from = supervisor.mark();
    const station = seedStation(A);
    const connected = await supervisor.waitForLine(/event=session-connected /, 30_000, from);
    const vm = /vm=(\S+)/.exec(connected)?.[1] ?? '';
    const before = (await domains(PREFIX)).find((d) => d.name === vm);
    const pid = await qemuPid(vm);
    const other = (await domains(PREFIX)).find((d) => d.name !== vm);
    t.ok(before?.session && pid, `a session on ${vm} (qemu pid ${pid})`);

    const libvirtDbusPid = async () => (await run('pgrep', ['-x', 'libvirt-dbus']).catch(() => ({ stdout: '' }))).stdout.trim();
    const oldLibvirtDbus = await libvirtDbusPid();
    await run('bash', [DAEMONS, 'stop', daemon]);
    if (daemon === 'libvirt-dbus') {
      // It is bus-activated: the supervisor's next call starts a new one, so there may be no outage to see.
      await waitFor('a new libvirt-dbus', async () => {
        const now = await libvirtDbusPid();
        return now !== '' && now !== oldLibvirtDbus ? true : undefined;
      }, 60_000);
      t.pass('a new libvirt-dbus was started (bus activation) by the calls that followed');
    } else {
      if (daemon === 'dbus') {
        // Nobody can ask it over the bus now: its log (and systemd STATUS=) say it.
        await supervisor.waitForLine(/event=bus-lost/, 30_000, from);
        await supervisor.waitForLine(/event=libvirt-unreachable .*code=bus-unavailable/, 30_000, from);
        t.pass('the supervisor notices the bus is gone and reports itself degraded');
      } else {
        await waitFor('degraded', () => stateIs('degraded'), 60_000);
        t.pass('the supervisor reports itself degraded');
        t.ok(supervisor.lines.slice(from).some((l) => l.includes('event=libvirt-unreachable')), 'and logs why');
      }
      t.equal(await askNow(B), 'ERR 503 try-again', 'a station asking meanwhile is told to try again');
    }
    // Meanwhile the other VM dies: the pool must heal once libvirt is back.
    const otherPid = other ? await qemuPid(other.name) : undefined;
    if (otherPid !== undefined && daemon === 'libvirtd') await run('kill', ['-9', String(otherPid)]);

    await run('bash', [DAEMONS, 'up']);
    if (daemon === 'dbus') {
      await supervisor.waitForLine(/event=bus-reconnected/, 60_000, from);
      t.pass('the supervisor reconnects to the new bus by itself');
    }
    await waitFor('ready again', () => stateIs('ready').catch(() => undefined), 90_000);
    t.pass('ready again once the daemon is back (and its name answers on the bus)');
    t.equal(supervisor.pid !== undefined && (await run('kill', ['-0', String(supervisor.pid)]).then(() => true, () => false)), true, 'the same supervisor process');
    const after = (await domains(PREFIX)).find((d) => d.name === vm);
    t.equal(after?.uuid, before?.uuid, 'the session VM is the same domain');
    t.equal(after?.state, 'in-use', 'still in use');
    t.equal(after?.session, before?.session, 'by the same session');
    t.equal(await qemuPid(vm), pid, 'its QEMU never stopped');
    t.ok(station.exitCode === null && station.signalCode === null, "the station's client is still connected");

    await waitFor(
      'the pool healed',
      async () => {
        const d = await domains(PREFIX);
        const healed = d.find((x) => x.name !== vm);
        return d.length === 2 && healed?.state === 'clean' ? healed : undefined;
      },
      120_000,
    ).then((healed) => {
      if (daemon === 'libvirtd') t.not(healed.uuid, other?.uuid, 'the VM that died meanwhile was replaced by a fresh clone');
      else t.pass('the other VM is clean');
    });

    // Events and calls work again: the visitor leaves and the VM is recycled.
    const leaving = supervisor.mark();
    await A.killAll();
    t.notOk(supervisor.lines.some((l) => /supervisor-crashed|supervisor-failed/.test(l)), 'the supervisor never fell over');
    await supervisor.waitForLine(new RegExp(`event=vm-destroyed .*vm=${vm} reason=session-ended`), 30_000, leaving);
    await waitForClean(POOL, 2);
    t.pass('the session ends normally afterwards and the pool is whole');
  });
}
