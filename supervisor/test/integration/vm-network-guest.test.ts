// A real TCG guest on the supervisor's VM network: it gets its lease from the
// supervisor's dnsmasq and, probing from inside (the test image's
// tabula.probe= URLs, reported on its serial console), reaches the
// whitelisted name's web server and neither a name nor a raw address off the
// list; a whitelist change opens a name live, under the running VM.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { makeTestRoot, run, testConfig, waitFor, writeConfig, TEST_PREFIX } from '../helpers/env.js';
import { SupervisorProcess, tabulactl, waitForClean } from '../helpers/supervisor-process.js';
import { removeDomains } from '../helpers/virsh.js';
import { ALLOWED, makeInternet, OTHER } from '../helpers/vm-world.js';

const POOL = `${TEST_PREFIX}-vmreal`;
const VM = `tabula-${POOL}-0`;
const BRIDGE = 'tbr-vmr';
const TABLE = 'tabula_it_vmr';
const root = await makeTestRoot('vmreal');
const internet = await makeInternet('vmr');
const probes = [`http://${ALLOWED.name}:8080/`, `http://${OTHER.name}:8080/`, `http://${OTHER.address}:8080/`];
const text = testConfig(root, [{ name: POOL, size: 1, spicePortBase: 5995 }])
  .replace(`cmdline = "${root.cmdline}"`, `cmdline = "${root.cmdline} tabula.probe=${probes.join(',')}"`)
  .replace('[[pool]]', ['[vm_network]', `bridge = "${BRIDGE}"`, 'address = "10.89.0.1/24"', `upstream_dns = ["${internet.dns}"]`, `whitelist = ["${ALLOWED.name}"]`, `nft_table = "${TABLE}"`, '', '[[pool]]'].join('\n'));
const config = await writeConfig(root, text);
const supervisor = new SupervisorProcess(config);
const consoleLog = join(root.dir, 'state/pools', POOL, `${VM}.console.log`);
let uuid: string | undefined;

t.teardown(async () => {
  await supervisor.stop();
  await removeDomains(`tabula-${POOL}-`);
  await run('nft', ['delete', 'table', 'inet', TABLE]).catch(() => undefined);
  await run('ip', ['link', 'del', BRIDGE]).catch(() => undefined);
  await internet.cleanup();
  await root.cleanup();
});

async function consoleLines(): Promise<string[]> {
  return (await readFile(consoleLog, 'utf8').catch(() => '')).split('\n');
}

/** The newest probe result for `url` after line `from` of the console log. */
async function probeResult(url: string, from: number, timeoutMs = 60_000): Promise<string> {
  return waitFor(
    `a probe of ${url}`,
    async () => (await consoleLines()).slice(from).reverse().find((l) => l.includes('TABULA-PROBE ') && l.includes(`url=${url} `)),
    timeoutMs,
    500,
  );
}

t.test('a real guest gets its lease from the supervisor and reaches only the whitelist', async (t) => {
  uuid = (await waitForClean(POOL, 1)).pools[0]?.vms[0]?.uuid;
  const net = await waitFor('the guest\'s lease', async () => (await consoleLines()).find((l) => l.includes('TABULA-NET ')), 90_000, 500);
  t.match(net, /TABULA-NET ip=10\.89\.0\.\d+ router=10\.89\.0\.1 dns=10\.89\.0\.1/, `the guest's lease from the supervisor (${net.trim()})`);
  t.match(await probeResult(probes[0] ?? '', 0), /result=ok/, `${ALLOWED.name}: resolved and its server answered`);
  t.match(await probeResult(probes[1] ?? '', 0), /result=fail/, `${OTHER.name}: not on the list, no answer`);
  t.match(await probeResult(probes[2] ?? '', 0), /result=fail/, `${OTHER.address}: a raw address off the list, no answer`);
});

t.test('a whitelist change reaches the running guest: a new name opens without a restart', async (t) => {
  const from = (await consoleLines()).length;
  t.equal((await tabulactl('whitelist', 'add', OTHER.name)).code, 0, `tabulactl whitelist add ${OTHER.name}`);
  const after = await waitFor(
    `${OTHER.name} opening`,
    async () => {
      const line = await probeResult(probes[1] ?? '', from, 5_000).catch(() => undefined);
      return line?.includes('result=ok') ? line : undefined;
    },
    60_000,
    1_000,
  );
  t.match(after, /result=ok/, `the guest now reaches ${OTHER.name}`);
  const status = await tabulactl('status', '--json');
  t.equal((JSON.parse(status.stdout) as { pools: Array<{ vms: Array<{ uuid: string }> }> }).pools[0]?.vms[0]?.uuid, uuid, 'the same VM, never restarted');
});
