// The admin page's golden images in a real browser (Debian's Chromium, driven
// by Playwright) against the real supervisor with TCG VMs: a first start
// without a golden image says so on the overview and leads the images page
// with the import; a garbage upload is refused naming why and leaves nothing
// in the store; the test golden image uploaded from the "laptop" lands in the
// store with its sha256, is used for the pool (which reaches clean on it), a
// second upload is used and rolled back from, each behind a confirmation.
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { openAdminBrowser, openUrl, setPassword } from '../helpers/admin-page.js';
import type { TestBrowser } from '../helpers/browser.js';
import { makeManagementSide } from '../helpers/management-side.js';
import { makeTestRoot, sha256, TEST_PREFIX, testConfig, waitFor, writeConfig } from '../helpers/env.js';
import { SupervisorProcess, tabulactl, waitForClean } from '../helpers/supervisor-process.js';
import { removeDomains } from '../helpers/virsh.js';

const POOL = `${TEST_PREFIX}-wimg`;
const HTTPS_PORT = 18444;
const PASSWORD = 'staff only, please';

const root = await makeTestRoot('wimg');
const STORE = join(root.dir, 'state', 'images');
const MISSING = join(root.dir, 'not-delivered-yet.qcow2');
const mgmt = await makeManagementSide('wimg');
const URL_BASE = `https://${mgmt.serverAddress}:${HTTPS_PORT}`;
const LAPTOP = mgmt.laptopAddress.replace(/\./g, '\\.');
const config = await writeConfig(root, testConfig(root, [{ name: POOL, size: 1, spicePortBase: 6070, golden: MISSING }], ['disk_reserve = 64', '', '[admin]', `https_port = ${HTTPS_PORT}`].join('\n')));
const supervisor = new SupervisorProcess(config);
const opened = await openAdminBrowser(mgmt.netns, root.dir);
let browser: TestBrowser | undefined = opened.browser;
const { page } = opened.browser;

t.teardown(async () => {
  await browser?.close().catch(() => undefined);
  await supervisor.stop();
  await removeDomains(`tabula-${POOL}-`);
  await root.cleanup();
  const left = await mgmt.cleanup();
  if (left.length > 0) throw new Error(`management side not removed: ${left.join(', ')}`);
});

const storeFiles = async () => (await readdir(STORE).catch(() => [] as string[])).sort();
const poolRow = () => page.locator(`#pool-images tr[data-pool="${POOL}"]`);

/** Chooses `file` on the images page, names it, and uploads it. */
async function uploadImage(file: string, name: string): Promise<void> {
  await page.locator('#image-file').setInputFiles(file);
  await page.getByLabel('Name in the store').fill(name);
  await page.getByRole('button', { name: 'Upload and import' }).click();
}

/** Presses "Use for pool" on an image's row and confirms. */
async function useForPool(image: string): Promise<void> {
  await page.locator(`#images-table tr[data-image="${image}"]`).getByRole('button', { name: `Use for pool ${POOL}` }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByText('sessions under way finish on the old image', { exact: false }).waitFor();
  await dialog.getByRole('button', { name: `Use ${image}` }).click();
  await page.locator('#alert', { hasText: `Pool ${POOL} now clones from ${image}` }).waitFor();
}

t.test('no golden image: the overview says so for the pool, and the images page leads with the import', async (t) => {
  await supervisor.waitForLine(/event=admin-listening scheme=https/, 60_000);
  await supervisor.waitForLine(new RegExp(`event=golden-image-unusable pool=${POOL}`), 60_000);
  await openUrl(page, `${URL_BASE}/`);
  await setPassword(page, PASSWORD, PASSWORD);
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  const banner = page.locator(`section[data-pool="${POOL}"] [data-banner="no-golden"]`);
  await banner.waitFor();
  t.match(await banner.textContent(), /No golden image — import one on the Golden images page\. No VM is made until then \(.*not-delivered-yet\.qcow2/);
  await browser?.shot('20-overview-no-golden-image');

  await banner.getByRole('link', { name: 'Golden images page' }).click();
  await page.getByRole('heading', { name: 'Golden images', level: 1 }).waitFor();
  await page.locator('#no-golden', { hasText: `No golden image for pool ${POOL}` }).waitFor();
  const formFirst = await page.evaluate(() => {
    const form = document.getElementById('images-upload');
    const pools = document.getElementById('image-pools');
    return form !== null && pools !== null && Boolean(form.compareDocumentPosition(pools) & Node.DOCUMENT_POSITION_FOLLOWING);
  });
  t.ok(formFirst, 'the import form comes before the tables');
  t.match(await poolRow().textContent(), /not-delivered-yet\.qcow2.*no golden image:/);
  await page.locator('#kernel-note', { hasText: `Pool ${POOL} boots its kernel directly` }).waitFor();
  t.pass('the page says a pool booting its own kernel takes uploads with the pool\'s kernel, and where images with their own go');
  await browser?.shot('21-images-no-golden-image');
});

t.test('a garbage upload is refused, naming why, and leaves nothing in the store', async (t) => {
  const garbage = join(root.dir, 'notes.qcow2');
  await writeFile(garbage, 'this is a shopping list, not a disk image\n');
  const mark = supervisor.mark();
  await uploadImage(garbage, 'notes.qcow2');
  const error = page.locator('#upload-error', { hasText: /^Not imported: / });
  await error.waitFor({ timeout: 60_000 });
  // qemu-img takes it for a raw disk of one sector.
  t.match(await error.textContent(), /golden image notes\.qcow2 is 512 bytes: too small for a disk \(at least 1 MiB\) \(golden-image-invalid\)$/);
  await browser?.shot('22-garbage-refused');
  t.same(await storeFiles(), [], 'nothing of it in the store, not even a temporary file');
  await supervisor.waitForLine(/event=admin-action-refused action=image-upload .*code=golden-image-invalid/, 10_000, mark);

  await uploadImage(garbage, '../escape');
  await page.locator('#upload-error', { hasText: /"\.\.\/escape" is not a safe image name.*\(invalid-argument\)/ }).waitFor();
  t.pass('a bad name is refused before anything is sent');
  t.same(await storeFiles(), []);
});

t.test('the test golden image uploaded from the laptop lands in the store with its sha256; used for the pool, the pool reaches clean', async (t) => {
  const digest = await sha256(root.golden);
  await uploadImage(root.golden, 'web-a.qcow2');
  await page.locator('#upload-status', { hasText: 'Imported web-a.qcow2: qcow2' }).waitFor({ timeout: 120_000 });
  const row = page.locator('#images-table tr[data-image="web-a.qcow2"]');
  await row.waitFor();
  t.match(await row.textContent(), new RegExp(`qcow2.*${digest.slice(0, 12)}.*usable`), 'listed with its format, sha256 and state');
  t.same(await storeFiles(), ['web-a.qcow2', 'web-a.qcow2.sha256'], 'the image and its sha256, nothing else');
  t.equal(await sha256(join(STORE, 'web-a.qcow2')), digest, 'the bytes arrived whole');
  t.match(supervisor.log(), new RegExp(`event=admin-action action=image-upload address=${LAPTOP} name=web-a\\.qcow2 bytes=\\d+ sha256=${digest}`));
  await browser?.shot('23-uploaded');

  await useForPool('web-a.qcow2');
  await poolRow().locator('td.current', { hasText: 'web-a.qcow2' }).waitFor();
  await page.locator('#no-golden').waitFor({ state: 'detached', timeout: 60_000 });
  t.pass('the banner is gone once the pool has a usable image');
  await page.getByRole('link', { name: 'Overview' }).click();
  await page.locator(`section[data-pool="${POOL}"] li.vm[data-state="clean"]`).waitFor({ timeout: 240_000 });
  t.equal(await page.locator('[data-banner="no-golden"]').count(), 0, 'no banner on the overview');
  await waitForClean(POOL, 1);
  await browser?.shot('24-pool-clean-on-upload');
  await page.getByRole('link', { name: 'Golden images' }).click();
  await poolRow().locator('td', { hasText: 'in use, confirmed' }).waitFor({ timeout: 60_000 });
  t.match(await poolRow().textContent(), /web-a\.qcow2.*in use, confirmed.*not-delivered-yet\.qcow2/, 'confirmed, with the missing image as the one to roll back to');
});

t.test('a second image used, then rolled back from on the page: the pool clones from the first again', async (t) => {
  await uploadImage(root.golden, 'web-b.qcow2');
  await page.locator('#upload-status', { hasText: 'Imported web-b.qcow2' }).waitFor({ timeout: 120_000 });
  await useForPool('web-b.qcow2');
  await poolRow().locator('td.current', { hasText: 'web-b.qcow2' }).waitFor();
  await poolRow().locator('td.previous', { hasText: 'web-a.qcow2' }).waitFor();
  await browser?.shot('25-switched');

  await poolRow().getByRole('button', { name: 'Roll back' }).click();
  const dialog = page.getByRole('dialog', { name: `Roll pool ${POOL} back to web-a.qcow2?` });
  await dialog.waitFor();
  await dialog.getByRole('button', { name: 'Roll back' }).click();
  await page.locator('#alert', { hasText: `Pool ${POOL} clones from web-a.qcow2 again` }).waitFor();
  await poolRow().locator('td.current', { hasText: 'web-a.qcow2' }).waitFor();
  await poolRow().locator('td.previous', { hasText: 'web-b.qcow2' }).waitFor();
  t.match(supervisor.log(), new RegExp(`event=admin-action action=image-use address=${LAPTOP} pool=${POOL} image=web-b\\.qcow2`));
  t.match(supervisor.log(), new RegExp(`event=golden-rollback pool=${POOL} .*trigger=admin`));
  const listed = JSON.parse((await tabulactl('--json', 'image', 'list')).stdout) as Array<{ name: string; currentOf: string[]; previousOf: string[] }>;
  t.match(listed.find((i) => i.name === 'web-a.qcow2'), { currentOf: [POOL] }, 'tabulactl sees the same');
  t.match(listed.find((i) => i.name === 'web-b.qcow2'), { previousOf: [POOL] });
  await waitFor(
    'the pool clean on web-a again',
    async () => {
      const s = await waitForClean(POOL, 1, 240_000);
      const vm = s.pools.find((p) => p.name === POOL)?.vms[0] as { golden?: string } | undefined;
      return vm?.golden === undefined || vm.golden.endsWith('/web-a.qcow2') ? true : undefined;
    },
    300_000,
    1000,
  );
  await browser?.shot('26-rolled-back');
  t.same(opened.problems, [], 'no script error nor CSP refusal in the page, all along');
  const closing = browser;
  browser = undefined;
  await closing?.close();
});
