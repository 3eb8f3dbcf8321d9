// The stations' HTTP endpoint on the station LAN: a station fetches its
// client.conf and the slideshow's pictures from the server, so staff change
// the pictures in one place; nothing outside the picture folder is served.
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { makeTestRoot, testConfig, writeConfig } from '../helpers/env.js';
import { makeStationLan, removeStationWorld, stationsSection, type Station } from '../helpers/station-lan.js';
import { SupervisorProcess } from '../helpers/supervisor-process.js';

const root = await makeTestRoot('endpoint');
const lan = await makeStationLan('ep', 1);
const [A] = lan.stations as [Station];
const pictures = join(root.dir, 'pictures');
const later = join(root.dir, 'pictures-2');
// A 1×1 PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
await mkdir(pictures);
await mkdir(later);
await writeFile(join(pictures, 'welcome.png'), PNG);
await writeFile(join(pictures, 'notes.txt'), 'staff notes');
await symlink('/etc/passwd', join(pictures, 'escape.png'));
await writeFile(join(later, 'winter.png'), PNG);
const configText = (dir: string) =>
  testConfig(root, [{ name: 'it-ep', size: 0, spicePortBase: 5990 }]).replace('[[pool]]', `${stationsSection(lan, 6)}\nslideshow_dir = "${dir}"\n\n[[pool]]`);
const config = await writeConfig(root, configText(pictures));
const supervisor = new SupervisorProcess(config);

t.teardown(async () => {
  await supervisor.stop();
  await root.cleanup();
  await removeStationWorld(lan);
});

/**
 * An HTTP request from inside the station, by the test's own Node (busybox
 * wget crashes inside a network namespace here): status and body (base64).
 */
const FETCH = `
const [url, method] = process.argv.slice(-2);
fetch(url, { method, ...(method === 'POST' ? { body: 'x=1' } : {}) })
  .then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: Buffer.from(await r.arrayBuffer()).toString('base64') })))
  .catch((e) => process.stdout.write(JSON.stringify({ status: 0, body: Buffer.from(String(e)).toString('base64') })));
`;
async function request(path: string, method = 'GET'): Promise<{ status: number; body: Buffer }> {
  const r = await A.exec([process.execPath, '-e', FETCH, `http://${lan.address}${path}`, method]);
  const out = JSON.parse(r.stdout || '{"status":0,"body":""}') as { status: number; body: string };
  return { status: out.status, body: Buffer.from(out.body, 'base64') };
}

async function get(path: string): Promise<{ ok: boolean; body: string }> {
  const r = await request(path);
  return { ok: r.status === 200, body: r.body.toString('utf8') };
}

t.test('a station fetches client.conf and the pictures; nothing else is served', async (t) => {
  await supervisor.waitForLine(/event=station-endpoint-open address=169\.254\.24\.1 port=80/, 30_000);
  const conf = await get('/client.conf');
  t.ok(conf.ok, 'GET /client.conf');
  t.match(conf.body, /^server_ip=169\.254\.24\.1$/m, "the seed's server_ip");
  t.match(conf.body, /^vdi_signal_port=5905$/m);
  t.match(conf.body, /^vdi_spice_port=5906$/m);
  t.match(conf.body, /^slideshow_url=http:\/\/169\.254\.24\.1\/slideshow\/$/m);
  t.match(conf.body, /^pools=it-ep$/m);

  const index = await get('/slideshow/');
  const list = JSON.parse(index.body) as Array<{ name: string; size: number }>;
  t.same(list.map((p) => p.name), ['welcome.png'], 'the index lists the pictures only: no text file, no link out of the folder');
  t.equal(list[0]?.size, PNG.length);
  const img = await request('/slideshow/welcome.png');
  t.equal(img.status, 200);
  t.same(img.body, PNG, 'a picture comes back byte for byte');

  for (const path of ['/slideshow/notes.txt', '/slideshow/escape.png', '/slideshow/..%2f..%2fetc%2fpasswd', '/slideshow/%2e%2e%2fnotes.txt', '/etc/passwd', '/']) {
    const r = await get(path);
    t.notOk(r.ok, `${path} is not served`);
  }
  t.equal((await request('/client.conf', 'POST')).status, 405, 'POST is refused');
  t.equal((await request('/slideshow/%zz.png')).status, 404, 'a malformed name is simply not found');
});

t.test('a reload with another picture folder serves it at once', async (t) => {
  await writeConfig(root, configText(later));
  const from = supervisor.mark();
  supervisor.signal('SIGHUP');
  await supervisor.waitForLine(/event=config-reloaded/, 10_000, from);
  const list = JSON.parse((await get('/slideshow/')).body) as Array<{ name: string }>;
  t.same(list.map((p) => p.name), ['winter.png']);
});
