// The viewer harness against a real VM: remote-viewer under Xvfb sees the
// guest's screen and OCR reads the VM's name off it, a wrong ticket shows no
// guest, and close() and the teardown leave nothing behind.
import { randomBytes } from 'node:crypto';
import { access, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { BUILD, makeTestRoot, run, waitFor, TEST_PREFIX } from '../helpers/env.js';
import { guestBoots } from '../helpers/guest.js';
import { ocrNamePattern, ocrShows, startViewer, type Viewer } from '../helpers/spice-client.js';
import { listDomains, removeDomains, virsh } from '../helpers/virsh.js';

const NAME = `tabula-${TEST_PREFIX}-spice-0`;
const PORT = 5990;
const PASSWORD = randomBytes(12).toString('base64url');
const ARTIFACTS = join(BUILD, 'test-reports', 'spice-client');

const root = await makeTestRoot('spice');
const overlay = join(root.dir, `${NAME}.qcow2`);
const consoleLog = join(root.dir, `${NAME}.console.log`);
const viewers: Viewer[] = [];

function graphicsXml(attrs: string): string {
  return `<graphics type='spice' port='${PORT}' autoport='no' ${attrs}><listen type='address' address='127.0.0.1'/></graphics>`;
}

const domainXml = `<domain type='qemu'>
  <name>${NAME}</name>
  <memory unit='MiB'>192</memory>
  <vcpu>1</vcpu>
  <sysinfo type='smbios'><system><entry name='serial'>${NAME}</entry></system></sysinfo>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>${root.kernel}</kernel>
    <initrd>${root.initrd}</initrd>
    <cmdline>${root.cmdline}</cmdline>
    <smbios mode='sysinfo'/>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${overlay}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <controller type='virtio-serial' index='0'/>
    <channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <serial type='file'><source path='${consoleLog}'/><target port='0'/></serial>
    ${graphicsXml(`passwd='${PASSWORD}'`)}
    <video><model type='vga'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
`;

async function closeAll(): Promise<void> {
  await Promise.all(viewers.splice(0).map((v) => v.close()));
}

/** Xvfb and remote-viewer are children of this test process: list exactly those. */
async function viewerProcesses(): Promise<string[]> {
  const { stdout } = await run('ps', ['-o', 'comm=', '--ppid', String(process.pid)]).catch(() => ({ stdout: '' }));
  return stdout.split('\n').map((s) => s.trim()).filter((c) => c === 'Xvfb' || c === 'remote-viewer').sort();
}

/** Nothing started here may outlive the test, even when an assertion fails. */
t.teardown(async () => {
  await closeAll();
  await removeDomains(NAME);
  await root.cleanup();
});

t.before(async () => {
  await removeDomains(NAME);
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', root.golden, overlay]);
  const xmlFile = join(root.dir, `${NAME}.xml`);
  await writeFile(xmlFile, domainXml);
  await virsh('define', xmlFile);
  await virsh('start', NAME);
  await waitFor('the guest to report itself on serial', async () => ((await guestBoots(consoleLog)).length > 0 ? true : undefined), 120_000);
});

t.test('with the right password the viewer shows the guest, and OCR reads its name', async (t) => {
  const v = await startViewer({ host: '127.0.0.1', port: PORT, password: PASSWORD, artifactsDir: ARTIFACTS, name: 'right-password' });
  viewers.push(v);
  const shot = await v.waitForText(ocrNamePattern(NAME), 90_000);
  t.match(shot.text, /TABULA/, 'the guest console, not only the window frame');
  t.notOk(ocrShows(shot.text, `tabula-${TEST_PREFIX}-spice-1`), 'a sibling VM name does not match');
  await t.resolves(access(shot.png), 'the screenshot is kept as an artifact');
  t.ok(shot.png.startsWith(ARTIFACTS), 'in artifactsDir');
  const again = await v.screenshot('right-password-named.png');
  t.equal(again.png, join(ARTIFACTS, 'right-password-named.png'), 'a relative file name lands in artifactsDir');
  t.ok(ocrShows(again.text, NAME), 'a plain screenshot shows the name too');

  const display = v.display;
  t.same(await viewerProcesses(), ['Xvfb', 'remote-viewer'], 'Xvfb and remote-viewer are running');
  await v.close();
  viewers.splice(viewers.indexOf(v), 1);
  t.same(await viewerProcesses(), [], 'close() ends Xvfb and remote-viewer');
  await t.rejects(access(`/tmp/.X${display}-lock`), 'and Xvfb released its display');
  t.equal(await v.exited, null, 'remote-viewer was ended by a signal');
});

t.test('with a wrong password the server refuses and the viewer asks for a password, never showing the guest', async (t) => {
  const qemuLog = `/var/log/libvirt/qemu/${NAME}.log`;
  const logBefore = (await readFile(qemuLog, 'utf8').catch(() => '')).length;
  const v = await startViewer({ host: '127.0.0.1', port: PORT, password: `${PASSWORD}-wrong`, artifactsDir: ARTIFACTS, name: 'wrong-password' });
  viewers.push(v);
  // remote-viewer does not exit on a refused ticket: it opens its password dialog.
  const shot = await v.waitForText(/Authentication (is )?required/i, 60_000);
  t.notOk(ocrShows(shot.text, NAME), 'no guest screen');
  t.notMatch(shot.text, /TABULA-GUEST/, 'no guest console');
  const stillRunning = await Promise.race([v.exited.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 2_000))]);
  t.ok(stillRunning, 'remote-viewer keeps waiting for a password');
  t.match((await readFile(qemuLog, 'utf8').catch(() => '')).slice(logBefore), /Invalid password/, 'QEMU logged the refused ticket');
  await v.close();
});

t.test('exited resolves when the server drops the viewer', async (t) => {
  const v = await startViewer({ host: '127.0.0.1', port: PORT, password: PASSWORD, artifactsDir: ARTIFACTS, name: 'dropped' });
  viewers.push(v);
  await v.waitForText(ocrNamePattern(NAME), 90_000);
  const xml = join(root.dir, 'graphics.xml');
  await writeFile(xml, graphicsXml(`passwd='${randomBytes(12).toString('base64url')}' connected='disconnect'`));
  await virsh('update-device', NAME, xml, '--live');
  const code = await Promise.race([v.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 15_000))]);
  t.equal(code, 0, 'remote-viewer exits 0 when the server disconnects it');
  await v.close();
});

t.test('teardown removes the domain, its files and every viewer', async (t) => {
  await closeAll();
  await removeDomains(NAME);
  await root.cleanup();
  t.same(await listDomains(NAME), [], 'no domain');
  await t.rejects(access(root.dir), 'no test directory');
  const left = (await readdir(tmpdir())).filter((d) => d.startsWith(`tabula-${TEST_PREFIX}-viewer-`));
  t.same(left, [], 'no viewer directory');
  t.same(await viewerProcesses(), [], 'no Xvfb or remote-viewer');
  const qemu = await run('pgrep', ['-af', `guest=${NAME},`]).catch(() => ({ stdout: '' }));
  t.equal(qemu.stdout.trim(), '', 'no QEMU');
});
