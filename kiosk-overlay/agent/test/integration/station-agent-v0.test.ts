// The station agent against an original (v0-only) server: it says hello, gets
// no WELCOME but the original "RULE ADDED, CONNECT NOW", and carries on the v0
// way: remote-viewer on the configured Spice port, no ticket; the session ends
// when the console goes away, and the kiosk is wiped as after any session.
//
// The v0-only server is the real supervisor behind a relay on another port
// that, like the original xinetd service, ignores whatever the station says:
// it asks the supervisor from the station's own namespace (the forward is
// opened for the station's address) and passes back only what the server says.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { BUILD, makeTestRoot, run, testConfig, TEST_PREFIX, writeConfig } from '../../../../supervisor/test/helpers/env.js';
import { ocrNamePattern } from '../../../../supervisor/test/helpers/spice-client.js';
import { makeStationLan, removeStationWorld, stationsSection, type Station } from '../../../../supervisor/test/helpers/station-lan.js';
import { status, SupervisorProcess, tabulactl, waitForClean } from '../../../../supervisor/test/helpers/supervisor-process.js';
import { removeDomains } from '../../../../supervisor/test/helpers/virsh.js';
import { startProcess, startXDisplay, stopProcess, type Started, type XDisplay } from '../../../../supervisor/test/helpers/x-display.js';
import { AgentProcess, createKioskAccount, press, processesOf, SCREEN_PROGRAM, writeStationConf, type KioskAccount } from '../helpers/kiosk-station.js';

const POOL = `${TEST_PREFIX}-agentv0`;
const ARTIFACTS = join(BUILD, 'test-reports', 'station-agent-v0');
/** Where the v0-only server listens. */
const V0_PORT = 5907;

const root = await makeTestRoot('agentv0');
const lan = await makeStationLan('agentv0', 1);
const [K] = lan.stations as [Station];
await mkdir(ARTIFACTS, { recursive: true });
// v0 stations get no ticket: the pool runs its consoles without.
const config = await writeConfig(
  root,
  testConfig(root, [{ name: POOL, size: 1, spicePortBase: 5950, consoleTickets: false }]).replace('[[pool]]', `${stationsSection(lan, 15)}\nhttp_port = 0\n\n[[pool]]`),
);
let supervisor: SupervisorProcess | undefined;
let display: XDisplay | undefined;
let account: KioskAccount | undefined;
let agent: AgentProcess | undefined;
let relay: Started | undefined;
const relayLog: string[] = [];

t.teardown(async () => {
  await agent?.stop();
  if (relay) await stopProcess(relay);
  await account?.remove();
  await display?.close();
  await supervisor?.stop();
  await removeDomains(`tabula-${TEST_PREFIX}-agentv0-`);
  await root.cleanup();
  await removeStationWorld(lan);
});

t.test('hello unanswered, "RULE ADDED, CONNECT NOW" instead: the agent falls back to v0 and shows the guest', async (t) => {
  supervisor = new SupervisorProcess(config);
  await waitForClean(POOL, 1);
  // The original service: input ignored (nc reads nothing from the station), the server's lines passed on.
  relay = startProcess(
    'socat',
    [`TCP-LISTEN:${V0_PORT},bind=${lan.address},reuseaddr,fork`, `SYSTEM:ip netns exec ${K.netns} nc ${lan.address} 5905 </dev/null`],
    { stdio: ['ignore', 'pipe', 'pipe'], log: relayLog },
  );
  display = await startXDisplay({ screen: '1440x800x24', artifactsDir: ARTIFACTS, name: 'kiosk-v0', ocr: 'threshold' });
  account = await createKioskAccount(`tabula-${TEST_PREFIX}-kioskv0`, join(root.dir, 'kiosk-home'));
  const conf = await writeStationConf(join(root.dir, 'station.conf'), {
    server_ip: lan.address,
    vdi_signal_port: V0_PORT,
    vdi_spice_port: 5906,
    server_config: false,
    slideshow_url: '',
    station_name: 'kiosk-v0',
    kiosk_user: account.name,
    display: `:${display.display}`,
    screen_program: SCREEN_PROGRAM,
    activity: 'none',
  });
  agent = new AgentProcess(K.netns, conf, join(root.dir, 'agent-state'));
  await display.waitForText(/Touch the screen/i, 60_000);
  await press(display.display, 'Return');
  await agent.waitFor(/event=session-v0 /, 60_000);
  const vm = (await status()).pools.find((p) => p.name === POOL)?.vms[0]?.name ?? '';
  const shot = await display.waitForText(ocrNamePattern(vm), 90_000);
  await run('cp', [shot.png, join(ARTIFACTS, '01-desktop-v0.png')]);
  t.pass(`the kiosk shows the guest ${vm} through the original protocol`);
  t.ok((await processesOf(account.uid)).some((p) => p.comm === 'remote-viewer'), 'remote-viewer runs as the kiosk account');
});

t.test('the VM goes away (staff recycle it): the viewer quits, the kiosk is wiped, the slideshow is back', async (t) => {
  const vm = (await status()).pools.find((p) => p.name === POOL)?.vms.find((v) => v.state === 'in-use')?.name;
  t.ok(vm, 'the session\'s VM is in use');
  const from = agent!.lines.length;
  const r = await tabulactl('recycle', vm!);
  t.equal(r.code, 0, `tabulactl recycle ${vm}`);
  const ended = await agent!.waitFor(/event=visit-ended /, 60_000, from);
  t.match(ended.line, /reason=viewer-exited/, 'the session ended when the console went away');
  await agent!.waitFor(/event=kiosk-cleaned /, 20_000, from);
  const shot = await display!.waitForText(/Touch the screen/i, 30_000);
  await run('cp', [shot.png, join(ARTIFACTS, '02-slideshow-after-v0.png')]);
  const procs = await processesOf(account!.uid);
  t.same(procs.filter((p) => !/screen\.js/.test(p.cmdline)).map((p) => p.cmdline), [], 'nothing but the new screen runs as the kiosk account');
});
