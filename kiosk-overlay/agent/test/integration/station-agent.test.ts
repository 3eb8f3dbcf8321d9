// The kiosk from the visitor's side: the real station agent, in a station's
// network namespace, drawing on an X display, against the real supervisor
// with real TCG VMs. Slideshow → touch → the OS menu → the queue → the
// desktop (the guest's own screen) → idle warning → the server ends the
// session → nothing of the visitor is left → the slideshow again; then the
// network goes away and comes back. Screenshots of each screen are kept.
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { BUILD, makeTestRoot, run, testConfig, TEST_PREFIX, waitFor, writeConfig } from '../../../../supervisor/test/helpers/env.js';
import { ocrNamePattern } from '../../../../supervisor/test/helpers/spice-client.js';
import { startViewer, type Viewer } from '../../../../supervisor/test/helpers/spice-client.js';
import { makeStationLan, removeStationWorld, stationsSection, type Station } from '../../../../supervisor/test/helpers/station-lan.js';
import { SupervisorProcess, waitForClean } from '../../../../supervisor/test/helpers/supervisor-process.js';
import { connectV1, fields, type V1Client } from '../../../../supervisor/test/helpers/v1-client.js';
import { removeDomains } from '../../../../supervisor/test/helpers/virsh.js';
import { startXDisplay, type XDisplay } from '../../../../supervisor/test/helpers/x-display.js';
import { AgentProcess, createKioskAccount, moveMouse, press, processesOf, SCREEN_PROGRAM, writeStationConf, type KioskAccount } from '../helpers/kiosk-station.js';

const POOL_A = `${TEST_PREFIX}-agent-a`;
const POOL_B = `${TEST_PREFIX}-agent-b`;
const ARTIFACTS = join(BUILD, 'test-reports', 'station-agent');
const HTTP_PORT = 8080;
/** Pool B ends a session after 20 s without input, warning 12 s before. */
const IDLE = 20;
const WARNING = 12;

const root = await makeTestRoot('agent');
// Station 0 is the kiosk; station 1 another visitor who holds pool B's only VM.
const lan = await makeStationLan('agent', 2);
const [K, other] = lan.stations as [Station, Station];
const slides = join(root.dir, 'slides');
const animation = join(root.dir, 'animation');
const localPictures = join(root.dir, 'local-pictures');
for (const d of [slides, animation, localPictures, ARTIFACTS]) await mkdir(d, { recursive: true });

/** A picture with big text OCR can read. */
async function picture(file: string, text: string, colour: string): Promise<void> {
  await run('convert-im6.q16', ['-size', '1440x800', `xc:${colour}`, '-font', 'DejaVu-Sans', '-fill', 'white', '-pointsize', '120', '-gravity', 'center', '-annotate', '0', text, file]);
}

const config = await writeConfig(
  root,
  testConfig(root, [
    { name: POOL_A, size: 1, spicePortBase: 5930 },
    { name: POOL_B, size: 1, spicePortBase: 5940, extra: [`idle_timeout = ${IDLE}`, `session_warning = ${WARNING}`] },
  ]).replace('[[pool]]', `${stationsSection(lan, 15)}\nhttp_port = ${HTTP_PORT}\nslideshow_dir = "${slides}"\n\n[[pool]]`),
);
let supervisor: SupervisorProcess | undefined;
let display: XDisplay | undefined;
let account: KioskAccount | undefined;
let agent: AgentProcess | undefined;
let otherClient: V1Client | undefined;
let otherViewer: Viewer | undefined;
let otherInput: NodeJS.Timeout | undefined;

t.teardown(async () => {
  clearInterval(otherInput);
  await agent?.stop();
  await otherClient?.kill();
  await otherViewer?.close();
  await account?.remove();
  await display?.close();
  await supervisor?.stop();
  await removeDomains(`tabula-${TEST_PREFIX}-agent-`);
  await root.cleanup();
  await removeStationWorld(lan);
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let shots = 0;
async function keep(name: string, pattern: RegExp, timeoutMs = 60_000): Promise<string> {
  const shot = await display!.waitForText(pattern, timeoutMs);
  const file = join(ARTIFACTS, `${String(++shots).padStart(2, '0')}-${name}.png`);
  await run('cp', [shot.png, file]);
  return shot.text;
}

/** Waits until the screen no longer shows `pattern`. */
async function gone(pattern: RegExp, timeoutMs: number): Promise<string> {
  let text = '';
  await waitFor(`screen without ${pattern}`, async () => {
    text = (await display!.screenshot()).text;
    return pattern.test(text) ? undefined : true;
  }, timeoutMs, 500);
  return text;
}

const PROMPT = /Touch the screen/i;

t.test('the kiosk boots to the slideshow, with the server\'s pictures', async (t) => {
  // The slideshow comes from the server's HTTP endpoint; the animation from the card.
  await picture(join(slides, 'one.png'), 'SLIDE ONE', 'navy');
  await picture(join(slides, 'two.png'), 'SLIDE TWO', 'darkgreen');
  await picture(join(animation, 'frame-1.png'), 'FRAME', 'gray20');
  supervisor = new SupervisorProcess(config);
  await waitForClean(POOL_A, 1);
  await waitForClean(POOL_B, 1);
  display = await startXDisplay({ screen: '1440x800x24', artifactsDir: ARTIFACTS, name: 'kiosk', ocr: 'threshold' });
  account = await createKioskAccount(`tabula-${TEST_PREFIX}-kiosk`, join(root.dir, 'kiosk-home'));
  const conf = await writeStationConf(join(root.dir, 'station.conf'), {
    server_ip: lan.address,
    vdi_signal_port: 5905,
    vdi_spice_port: 5906,
    animation_folder: animation,
    background_folder: localPictures,
    http_port: HTTP_PORT,
    station_name: 'kiosk-e2e',
    pool_labels: `${POOL_A}:Alpha Desktop,${POOL_B}:Beta Linux`,
    kiosk_user: account.name,
    display: `:${display.display}`,
    screen_program: SCREEN_PROGRAM,
    slideshow_interval: 2,
    activity: 'x11',
    input_report_interval: 1,
    retry_min: 1,
    retry_max: 2,
  });
  agent = new AgentProcess(K.netns, conf, join(root.dir, 'agent-state'));
  await agent.waitFor(/event=station-started/, 20_000);
  const text = await keep('slideshow', /SLIDE (ONE|TWO)/, 60_000);
  t.match(text, PROMPT, 'the invitation to start');
  await keep('slideshow-next', /SLIDE (ONE|TWO)/, 10_000);
  t.pass('the slideshow shows the pictures from the server\'s endpoint');
  const procs = await processesOf(account.uid);
  t.ok(procs.some((p) => /screen\.js/.test(p.cmdline)), `the screen runs as the kiosk account (${procs.map((p) => p.comm).join(' ')})`);
});

t.test('touch → the OS menu → the queue, while another visitor holds the only VM', async (t) => {
  // The other station takes pool B's VM and keeps it with its own viewer.
  otherClient = await connectV1(other, { host: lan.address, first: 'TABULA/1 HELLO station=other' });
  await otherClient.next(/^WELCOME /, 5_000);
  otherClient.send(`REQUEST pool=${POOL_B}`);
  const r = fields(await otherClient.next(/^READY /, 30_000));
  otherViewer = await startViewer({ netns: other.netns, host: lan.address, port: Number(r['port']), password: r['ticket'], artifactsDir: ARTIFACTS, name: 'other-station' });
  await otherClient.next(/^CONNECTED /, 60_000);
  // The other visitor is busy: pool B's idle limit must not end its session.
  otherInput = setInterval(() => otherClient?.send('INPUT'), 3_000);

  await press(display!.display, 'space');
  const menu = await keep('menu', /Beta Linux/, 30_000);
  t.match(menu, /Choose your system/i, 'the menu asks');
  t.match(menu, /Alpha Desktop/, 'pool A by its label');
  await press(display!.display, '2');
  const waiting = await keep('waiting', /queue\D{0,20}1\b/i, 30_000);
  t.match(waiting, /Preparing your desktop/i, 'the waiting screen, with the place in the queue');
});

let vm = '';
t.test('the other visitor leaves: the kiosk gets the fresh VM and shows the guest\'s screen', async (t) => {
  const from = agent!.lines.length;
  clearInterval(otherInput);
  otherClient!.send('END');
  await otherClient!.next(/^ENDED /, 30_000);
  await otherViewer!.close();
  const started = await agent!.waitFor(/event=viewer-started /, 180_000, from);
  vm = /vm=(\S+)/.exec(started.line)?.[1] ?? '';
  t.ok(vm.startsWith(`tabula-${POOL_B}-`), `the VM handed to the kiosk is pool B's (${vm})`);
  await agent!.waitFor(/event=session-connected /, 60_000, from);
  await keep('desktop', ocrNamePattern(vm), 90_000);
  t.pass(`the kiosk's screen shows the guest ${vm}`);
  const procs = await processesOf(account!.uid);
  t.ok(procs.some((p) => p.comm === 'remote-viewer'), 'remote-viewer runs as the kiosk account');
  const vv = (await readdir(account!.home)).filter((f) => f.endsWith('.vv'));
  t.same(vv, [], 'the .vv file with the ticket is gone once read');
  // What a visitor might leave behind: a file, and a program still running.
  await run('runuser', ['-u', account!.name, '--', 'touch', `/tmp/tabula-${TEST_PREFIX}-kiosk-planted`, join(account!.home, 'notes.txt')]);
  await run('sh', ['-c', `setsid runuser -u ${account!.name} -- sleep 600 >/dev/null 2>&1 &`]);
  await waitFor('the planted process', async () => ((await processesOf(account!.uid)).some((p) => p.comm === 'sleep') ? true : undefined), 10_000);
});

t.test('idle: the server\'s countdown shows over the desktop; input calls it off; then the session ends', async (t) => {
  const warned = await keep('countdown', /ends in/i, (IDLE - WARNING + 10) * 1000);
  t.match(warned, /\d/, 'the countdown shows the seconds');
  await moveMouse(display!.display, 300, 300);
  await moveMouse(display!.display, 320, 310);
  await gone(/ends in/i, 15_000);
  t.pass('input removed the countdown (the agent reported it, the server called the warning off)');
  const from = agent!.lines.length;
  const ended = await agent!.waitFor(/event=visit-ended /, (IDLE + 20) * 1000, from);
  t.match(ended.line, /reason=idle/, `the server ended the session for idleness (${ended.line})`);
  const cleaned = await agent!.waitFor(/event=kiosk-cleaned /, 20_000, from);
  t.match(cleaned.line, /killed=[1-9]/, `the kiosk account's processes were killed (${cleaned.line})`);
});

t.test('nothing of the visitor is left, and the slideshow is back', async (t) => {
  await keep('slideshow-again', PROMPT, 30_000);
  const procs = await processesOf(account!.uid);
  t.same(procs.filter((p) => !/screen\.js/.test(p.cmdline)).map((p) => p.cmdline), [], 'no process of the kiosk account but the new screen');
  t.equal(procs.length, 1, 'one screen');
  await t.rejects(stat(`/tmp/tabula-${TEST_PREFIX}-kiosk-planted`), 'the file left in /tmp is gone');
  t.same(await readdir(account!.home), [], 'the kiosk home is empty');
});

t.test('network lost: a touch shows "service unavailable"; when it is back, the slideshow', async (t) => {
  await run('ip', ['-n', K.netns, 'link', 'set', 'eth0', 'down']);
  try {
    await press(display!.display, 'space');
    const text = await keep('unavailable', /Service unavailable/i, 30_000);
    t.match(text, /again/i, 'it says it will try again');
  } finally {
    await run('ip', ['-n', K.netns, 'link', 'set', 'eth0', 'up']);
  }
  await agent!.waitFor(/event=server-reachable /, 60_000);
  await keep('slideshow-after-outage', PROMPT, 30_000);
  t.pass('back at the slideshow, no desktop and no shell in between');
});

t.test('stopping the agent leaves no process of the kiosk account', async (t) => {
  const code = await agent!.stop();
  t.equal(code, 0, 'the agent stops cleanly on SIGTERM');
  await sleep(200);
  t.same(await processesOf(account!.uid), [], 'nothing of the kiosk account runs');
});
