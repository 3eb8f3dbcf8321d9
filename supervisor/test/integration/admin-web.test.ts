// The admin web page in a real browser (Debian's Chromium, driven by
// Playwright) against the real supervisor with TCG VMs, a station and a VM
// network: first-use password, login (a wrong password refused), the overview
// live (a new VM reaching clean, a station's session appearing, ended from the
// page, its VM recycled), the whitelist, the HTTPS certificate made once and
// reused, and the admin port shut to stations.
import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { connect, type PeerCertificate } from 'node:tls';
import { join } from 'node:path';
import t from 'tap';
import { logIn as logInAs, openAdminBrowser, setPassword as setPasswordOn } from '../helpers/admin-page.js';
import type { TestBrowser } from '../helpers/browser.js';
import { makeManagementSide } from '../helpers/management-side.js';
import { makeTestRoot, run, testConfig, waitFor, writeConfig, TEST_PREFIX } from '../helpers/env.js';
import { makeStationLan, probe, removeStationWorld, stationsSection, TEST_TABLE, type Station } from '../helpers/station-lan.js';
import { status, SupervisorProcess, tabulactl, waitForClean } from '../helpers/supervisor-process.js';
import { connectV1 } from '../helpers/v1-client.js';
import { removeDomains } from '../helpers/virsh.js';

const POOL = `${TEST_PREFIX}-web`;
const VM0 = `tabula-${POOL}-0`;
const VM1 = `tabula-${POOL}-1`;
const HTTPS_PORT = 18443;
const HTTP_PORT = 18080;
const GUARD_TABLE = `${TEST_TABLE}_admin`;
const VM_BRIDGE = 'tbr-web-vm';
const VM_TABLE = 'tabula_it_web_vms';
const VM_ADDRESS = '10.89.0.1';
const PASSWORD = 'staff only, please';

const root = await makeTestRoot('web');
const lan = await makeStationLan('web', 1);
const [A] = lan.stations as [Station];
// Staff's laptop, on the management side.
const mgmt = await makeManagementSide('web');
const URL_BASE = `https://${mgmt.serverAddress}:${HTTPS_PORT}`;
const LAPTOP = mgmt.laptopAddress.replace(/\./g, '\\.');
const adminDir = join(root.dir, 'state', 'admin');
const config = await writeConfig(
  root,
  testConfig(root, [{ name: POOL, size: 1, spicePortBase: 6040, consoleTickets: false }]).replace(
    '[[pool]]',
    [
      stationsSection(lan, 8),
      '',
      '[vm_network]',
      `bridge = "${VM_BRIDGE}"`,
      `address = "${VM_ADDRESS}/24"`,
      `nft_table = "${VM_TABLE}"`,
      '',
      '[admin]',
      `https_port = ${HTTPS_PORT}`,
      `http_loopback_port = ${HTTP_PORT}`,
      '',
      '[[pool]]',
    ].join('\n'),
  ),
);
let supervisor = new SupervisorProcess(config);
const opened = await openAdminBrowser(mgmt.netns, root.dir);
let browser: TestBrowser | undefined = opened.browser;
const { page } = opened.browser;
const pageProblems = opened.problems;

t.teardown(async () => {
  await browser?.close().catch(() => undefined);
  await A.killAll();
  await supervisor.stop();
  await removeDomains(`tabula-${POOL}-`);
  await run('nft', ['delete', 'table', 'inet', GUARD_TABLE]).catch(() => undefined);
  await run('nft', ['delete', 'table', 'inet', VM_TABLE]).catch(() => undefined);
  await run('ip', ['link', 'del', VM_BRIDGE]).catch(() => undefined);
  await root.cleanup();
  await removeStationWorld(lan);
  const left = await mgmt.cleanup();
  if (left.length > 0) throw new Error(`management side not removed: ${left.join(', ')}`);
});

/** The certificate a TLS client is shown at host:port, or the error the connection met. */
function peerCertificate(host: string, port: number): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, rejectUnauthorized: false, servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate());
      socket.end();
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('timed out')));
    socket.on('error', reject);
  });
}

async function fingerprintOnDisk(): Promise<string> {
  return new X509Certificate(await readFile(join(adminDir, 'tls.crt'))).fingerprint256;
}

/** Records, in the page, the states each VM's tile shows, in order (no reload: the page's own memory). */
async function watchTiles(): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { tileStates: Record<string, string[]> };
    w.tileStates = {};
    const look = () => {
      for (const li of document.querySelectorAll<HTMLElement>('li.vm')) {
        const seen = (w.tileStates[li.dataset['vm'] ?? ''] ??= []);
        if (seen.at(-1) !== li.dataset['state']) seen.push(li.dataset['state'] ?? '');
      }
    };
    new MutationObserver(look).observe(document.body, { subtree: true, childList: true, attributes: true });
    look();
  });
}

async function tileStates(vm: string): Promise<string[]> {
  return page.evaluate((name) => (window as unknown as { tileStates: Record<string, string[]> }).tileStates[name] ?? [], vm);
}

/** A station of the original design (v0): it asks by saying nothing, then holds a TCP connection to its console, as its Spice client would. */
async function takeSession(station: Station): Promise<void> {
  const control = await connectV1(station, { host: lan.address });
  await control.next(/RULE ADDED, CONNECT NOW/, 60_000);
  station.spawn(['nc', lan.address, '5906']);
}

const setPassword = (password: string, repeat: string) => setPasswordOn(page, password, repeat);
const logIn = (password: string) => logInAs(page, password);

t.test('HTTPS: a self-signed certificate is made on the first start, its key readable by root only', async (t) => {
  const line = await supervisor.waitForLine(/event=admin-certificate /, 60_000);
  t.match(line, /created=true/, 'made now');
  await supervisor.waitForLine(new RegExp(`event=admin-listening scheme=https address=\\* port=${HTTPS_PORT}`), 30_000);
  await supervisor.waitForLine(new RegExp(`event=admin-listening scheme=http address=127\\.0\\.0\\.1 port=${HTTP_PORT}`), 30_000);
  const served = await peerCertificate('127.0.0.1', HTTPS_PORT);
  const onDisk = await fingerprintOnDisk();
  t.equal(served.fingerprint256, onDisk, 'the endpoint serves the certificate in STATE_DIR/admin/tls.crt');
  t.match(line, `fingerprint=${onDisk}`, 'and the log names its fingerprint, for staff to compare');
  t.same(served.issuer, served.subject, 'self-signed');
  t.equal((await stat(join(adminDir, 'tls.key'))).mode & 0o777, 0o600, 'tls.key is 0600');
  t.equal((await stat(adminDir)).mode & 0o777, 0o700, 'STATE_DIR/admin is 0700');
});

t.test('first visit: set the password (twice, long enough); then a wrong password is refused and the right one logs in', async (t) => {
  await page.goto(`${URL_BASE}/`);
  await page.getByRole('heading', { name: 'Set the admin password' }).waitFor();
  await setPassword('too short', 'too short');
  await page.locator('#login-error', { hasText: 'too short: at least 10 characters (invalid-argument)' }).waitFor();
  await setPassword(PASSWORD, `${PASSWORD}!`);
  await page.locator('#login-error', { hasText: 'the two passwords differ' }).waitFor();
  await browser?.shot('01-set-password-refused');
  await setPassword(PASSWORD, PASSWORD);
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  const record = await readFile(join(adminDir, 'password'), 'utf8');
  t.match(record, /^scrypt\$ln=\d+,r=\d+,p=\d+\$\S+\$\S+\n$/, 'stored as a scrypt record');
  t.notMatch(record, PASSWORD, 'never the password itself');
  t.equal((await stat(join(adminDir, 'password'))).mode & 0o777, 0o600, 'readable by root only');
  const cookie = (await browser?.context.cookies())?.find((c) => c.name === 'tabula_admin');
  t.match(cookie, { httpOnly: true, secure: true, sameSite: 'Strict' }, 'the login cookie: HttpOnly, Secure, SameSite=Strict');
  t.ok((cookie?.expires ?? 0) > Date.now() / 1000, 'and it expires');

  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  await logIn('not the password');
  await page.locator('#login-error', { hasText: 'wrong password (access-denied)' }).waitFor();
  await browser?.shot('02-wrong-password');
  await logIn(PASSWORD);
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  const log = supervisor.log();
  t.match(log, new RegExp(`event=admin-password-set address=${LAPTOP}`));
  t.match(log, new RegExp(`event=admin-login-failed address=${LAPTOP} reason=wrong-password`));
  t.equal(log.match(new RegExp(`event=admin-login address=${LAPTOP}`, 'g'))?.length, 2, 'two logins, each logged once');
  t.match(log, /event=admin-logout/);
});

t.test('overview: the pool reaches clean, and a VM added from the settings page appears and reaches clean, live', async (t) => {
  await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
  await watchTiles();
  await page.locator(`li.vm[data-vm="${VM0}"][data-state="clean"]`).waitFor({ timeout: 240_000 });
  t.pass(`${VM0} shows clean`);
  t.match(await page.locator('#status-line').textContent(), `${POOL}: 1/1 clean`);
  await browser?.shot('03-overview-clean');

  await page.getByRole('link', { name: 'Settings' }).click();
  const size = page.locator(`#size-${POOL}`);
  await size.fill('99');
  await page.locator(`form[data-pool="${POOL}"]`).getByRole('button', { name: 'Apply size' }).click();
  await page.locator(`#pool-error-${POOL}`, { hasText: '"size" must be between 0 and 64, not 99 (invalid-argument)' }).waitFor();
  await browser?.shot('04-settings-refused');
  await size.fill('2');
  await page.locator(`form[data-pool="${POOL}"]`).getByRole('button', { name: 'Apply size' }).click();
  await page.locator('#alert', { hasText: `${POOL} keeps 2 VM(s)` }).waitFor();
  await page.getByRole('link', { name: 'Overview' }).click();
  await page.locator(`li.vm[data-vm="${VM1}"][data-state="clean"]`).waitFor({ timeout: 240_000 });
  const seen = await tileStates(VM1);
  t.ok(seen.length >= 2 && seen.at(-1) === 'clean' && seen.slice(0, -1).every((s) => s === 'cloning' || s === 'booting'), `the new VM's tile went ${seen.join(' → ')}`);
  t.equal(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded), true, 'without the page reloading');
  t.match(supervisor.log(), new RegExp(`event=admin-action action=resize address=${LAPTOP} pool=${POOL} size=2`));

  await page.getByRole('link', { name: 'Settings' }).click();
  await size.fill('1');
  await page.locator(`form[data-pool="${POOL}"]`).getByRole('button', { name: 'Apply size' }).click();
  await page.locator('#alert', { hasText: `${POOL} keeps 1 VM(s)` }).waitFor();
  await page.getByRole('link', { name: 'Overview' }).click();
  await page.locator(`li.vm[data-vm="${VM1}"]`).waitFor({ state: 'detached', timeout: 60_000 });
  await waitForClean(POOL, 1);
});

t.test('a station takes a session: it appears live; ended from the page, its VM is recycled back to clean', async (t) => {
  const before = (await status()).pools.find((p) => p.name === POOL)?.vms.find((v) => v.name === VM0);
  await watchTiles();
  await takeSession(A);
  const row = page.locator('#sessions-table tr[data-session]', { hasText: A.address });
  await row.waitFor({ timeout: 60_000 });
  await page.locator(`li.vm[data-vm="${VM0}"][data-state="in-use"]`).waitFor();
  t.match(await row.textContent(), POOL, 'the session row names the pool');
  await supervisor.waitForLine(new RegExp(`event=session-connected vm=${VM0}`), 30_000);
  await row.locator('td', { hasText: /\d+ s/ }).first().waitFor({ timeout: 10_000 });
  await browser?.shot('05-session-live');
  const id = (await row.getAttribute('data-session')) ?? '';
  t.ok(id.length > 0, `session ${id}`);

  await row.getByRole('button', { name: 'End session' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'End session' }).click();
  await page.locator(`#sessions-table tr[data-session="${id}"]`).waitFor({ state: 'detached', timeout: 60_000 });
  await A.killAll();
  await page.locator(`li.vm[data-vm="${VM0}"][data-state="clean"]`).waitFor({ timeout: 240_000 });
  const seen = await tileStates(VM0);
  t.ok(seen[0] === 'clean' && seen.includes('in-use') && seen.at(-1) === 'clean' && seen.indexOf('in-use') < seen.length - 2, `the tile went ${seen.join(' → ')}`);
  await browser?.shot('06-recycled');
  const after = (await status()).pools.find((p) => p.name === POOL)?.vms.find((v) => v.name === VM0);
  t.not(after?.uuid, before?.uuid, 'a fresh clone took the used VM\'s place');
  t.match(supervisor.log(), new RegExp(`event=admin-action action=end-session address=${LAPTOP} session=${id}`));

  const logged = JSON.parse((await tabulactl('--json', 'sessions')).stdout) as Array<{ session: string; reason: string }>;
  t.ok(logged.some((e) => e.session === id && e.reason === 'admin'), 'the session log says the admin ended it');
  await page.getByRole('link', { name: 'Sessions' }).click();
  const entry = page.locator(`#session-log tr[data-session="${id}"]`);
  await entry.waitFor();
  t.equal(await entry.locator('td.reason').textContent(), 'admin');
  await page.locator('#f-reason').selectOption('idle');
  await page.getByRole('button', { name: 'Show' }).click();
  await entry.waitFor({ state: 'detached' });
  t.pass('filtered out by reason');
  await page.locator('#f-reason').selectOption('admin');
  await page.getByRole('button', { name: 'Show' }).click();
  await entry.waitFor();
  await browser?.shot('07-sessions');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download CSV' }).click()]);
  const csv = await readFile((await download.path()) ?? '', 'utf8');
  t.match(csv.split('\n')[0], /^session,station_address,/, 'the CSV of tabulactl');
  t.ok(csv.split('\n').some((l) => l.startsWith(`${id},${A.address},`) && l.includes(',admin,')), 'with the session in it');
});

t.test('whitelist: an entry added on the page is listed, and D-Bus lists it too; a bad one is explained', async (t) => {
  await page.getByRole('link', { name: 'Whitelist' }).click();
  await page.getByRole('heading', { name: 'Whitelist' }).waitFor();
  await page.getByLabel('Add an entry').fill('https://intranet.example');
  await page.getByRole('button', { name: 'Add' }).click();
  await page.locator('#wl-error', { hasText: 'is a URL: give the host name alone (example.org) (invalid-argument)' }).waitFor();
  await browser?.shot('08-whitelist-refused');
  await page.getByLabel('Add an entry').fill('198.51.100.77');
  await page.getByRole('button', { name: 'Add' }).click();
  await page.locator('li[data-entry="198.51.100.77"]').waitFor();
  await browser?.shot('09-whitelist');
  const listed = JSON.parse((await tabulactl('--json', 'whitelist', 'list')).stdout) as string[];
  t.ok(listed.includes('198.51.100.77'), `tabulactl whitelist list: ${JSON.stringify(listed)}`);
  t.match(supervisor.log(), new RegExp(`event=admin-action action=whitelist-add address=${LAPTOP} entry=198\\.51\\.100\\.77`));
  t.match(supervisor.log(), /event=admin-action-refused action=whitelist-add .*code=invalid-argument/);
});

t.test('settings: an idle timeout set on the page is in force (tabulactl says so); a bad value is refused next to its field', async (t) => {
  await page.getByRole('link', { name: 'Settings' }).click();
  const idle = page.locator(`#timeout-${POOL}-idle_timeout`);
  const apply = page.locator(`form[data-timeouts="${POOL}"]`).getByRole('button', { name: 'Apply timeouts' });
  t.equal(await idle.inputValue(), '300', "the file's value");
  await idle.fill('99999');
  await apply.click();
  await page.locator(`#timeout-${POOL}-idle_timeout-error`, { hasText: 'idle_timeout must be from 0 to 86400 seconds (0: never), not 99999' }).waitFor();
  await browser?.shot('09b-timeouts-refused');
  await idle.fill('900');
  await apply.click();
  await page.locator('#alert', { hasText: `${POOL}: idle_timeout 900 s` }).waitFor();
  const pools = async () => JSON.parse((await tabulactl('--json', 'pools')).stdout) as Array<{ name: string; timeouts?: Record<string, number> }>;
  await waitFor('tabulactl to show it', async () => ((await pools()).find((p) => p.name === POOL)?.timeouts?.['idle_timeout'] === 900 ? true : undefined), 10_000);
  t.pass('tabulactl --json pools: idle_timeout 900');
  t.match(supervisor.log(), new RegExp(`event=admin-action action=set-timeouts address=${LAPTOP} pool=${POOL} idle_timeout=900`));
  await idle.fill('300');
  await apply.click();
  await page.locator('#alert', { hasText: `${POOL}: idle_timeout 300 s` }).waitFor();
});

t.test('plots show the day so far, with the hand-off; the images page shows the pool\'s golden image', async (t) => {
  await page.getByRole('link', { name: 'Plots' }).click();
  const depth = page.getByRole('img', { name: new RegExp(`^Clean VMs in pool ${POOL}\\. Lowest 0 clean at .*; in the last minute at least \\d of 1\\.$`) });
  await depth.waitFor();
  const waits = page.getByRole('img', { name: new RegExp(`^Hand-off waits in pool ${POOL}\\. 1 hand-off\\(s\\)`) });
  await waits.waitFor();
  t.ok(await page.locator('.pool-plots circle.wait-mean').count() >= 1, 'the hand-off is drawn');
  await browser?.shot('10-plots');
  await page.getByRole('link', { name: 'Golden images' }).click();
  const row = page.locator(`#image-pools tr[data-pool="${POOL}"]`);
  await row.waitFor();
  t.match(await row.textContent(), /golden\.qcow2.*in use, confirmed/);
  await page.locator('#images tr[data-image="golden.qcow2"]', { hasText: /qcow2.*config file, not in the store|usable/ }).waitFor();
  await page.locator('#images-upload').waitFor();
  await browser?.shot('11-images');
});

t.test('the admin port cannot be reached from a station, on any of the server\'s addresses', async (t) => {
  t.equal(await probe(A, lan.address, 80), 'open', 'the station reaches the server (its station endpoint)');
  t.equal(await probe(A, lan.address, HTTPS_PORT), 'timeout', 'but not the admin page on the station LAN address');
  // A station that routes another of the server's addresses through it.
  await A.exec(['ip', 'route', 'add', `${VM_ADDRESS}/32`, 'via', lan.address]);
  t.equal(await probe(A, VM_ADDRESS, 1), 'refused', `the server answers on ${VM_ADDRESS} from the station (a closed port says so)`);
  t.equal(await probe(A, VM_ADDRESS, HTTPS_PORT), 'timeout', `but the admin port there is shut to it`);
  const rule = (await run('nft', ['list', 'table', 'inet', GUARD_TABLE])).stdout;
  t.match(rule, new RegExp(`iifname "${lan.bridge}" tcp dport \\{ ${HTTP_PORT}, ${HTTPS_PORT} \\} counter packets [1-9]\\d* bytes \\d+ drop`), 'dropped by the guard table');
  const mgmt = await peerCertificate(VM_ADDRESS, HTTPS_PORT);
  t.ok(mgmt.fingerprint256, 'the management side reaches it on the same address');
  // From the server itself, to the station LAN address: turned away by the page itself.
  await t.rejects(peerCertificate(lan.address, HTTPS_PORT), /socket disconnected|ECONNRESET|closed/, 'a connection to the station LAN address is closed at once');
  await supervisor.waitForLine(new RegExp(`event=admin-connection-refused local=${lan.address.replace(/\./g, '\\.')} remote=`), 10_000);
});

t.test('a second start reuses the certificate and the password, and keeps the plots; logins do not survive it', async (t) => {
  const first = await fingerprintOnDisk();
  const history = () => page.evaluate(async (pool) => ((await (await fetch('/api/history')).json()) as { pools: Array<{ name: string; samples: Array<{ at: number; handoffs: number }> }> }).pools.find((p) => p.name === pool)?.samples ?? [], POOL);
  const before = await history();
  await supervisor.stop();
  const tables = (await run('nft', ['list', 'tables'])).stdout;
  t.notMatch(tables, GUARD_TABLE, 'a stopped supervisor leaves no guard table (nothing listens then)');
  supervisor = new SupervisorProcess(config);
  const line = await supervisor.waitForLine(/event=admin-certificate /, 60_000);
  t.match(line, `created=false fingerprint=${first}`, 'found, not made');
  await supervisor.waitForLine(/event=admin-listening scheme=https/, 30_000);
  t.equal((await peerCertificate('127.0.0.1', HTTPS_PORT)).fingerprint256, first, 'the same certificate is served');
  // The open page's event stream breaks with the restart; the page finds its login gone.
  await page.getByRole('heading', { name: 'Log in' }).waitFor({ timeout: 60_000 });
  await logIn(PASSWORD);
  // Logged in again, the page shows where it was (the images page), as a reload would.
  await page.getByRole('heading', { name: 'Golden images' }).waitFor();
  await page.getByRole('link', { name: 'Overview' }).click();
  await page.locator(`li.vm[data-vm="${VM0}"][data-state="clean"]`).waitFor({ timeout: 60_000 });
  await browser?.shot('12-after-restart');
  const after = await history();
  const handoffs = (samples: typeof before) => samples.reduce((n, s) => n + s.handoffs, 0);
  t.ok(before.length > 0 && before.every((b) => after.some((a) => a.at === b.at)), `the plots kept the ${before.length} minute(s) before the restart (${after.length} now)`);
  t.ok(handoffs(before) >= 1 && handoffs(after) === handoffs(before), `with the earlier hand-off(s) (${handoffs(after)})`);
  t.ok((await stat(join(adminDir, 'history.json'))).isFile(), 'written to STATE_DIR/admin/history.json');
  const plain = await fetch(`http://127.0.0.1:${HTTP_PORT}/api/session`).then((r) => r.json() as Promise<{ passwordSet: boolean; loggedIn: boolean }>);
  t.same(plain, { passwordSet: true, loggedIn: false, minPasswordLength: 10 }, 'loopback HTTP: the password is still set');
  t.same(pageProblems, [], 'no script error nor CSP refusal in the page, all along');
  const closing = browser;
  browser = undefined;
  await closing?.close();
  t.pass('the browser is gone, with all its processes');
});
