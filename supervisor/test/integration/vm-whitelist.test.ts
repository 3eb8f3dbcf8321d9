// The supervisor's VM network, with a namespace standing where a VM's tap
// would be: the "VM" gets its lease from the supervisor's dnsmasq, resolves
// and reaches only whitelisted names; `tabulactl whitelist` changes that live
// (bad entries refused, nothing half-applied); the server itself stays shut.
// The "Internet" (an upstream DNS and two web servers) is a namespace too.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import t from 'tap';
import { makeTestRoot, run, testConfig, writeConfig } from '../helpers/env.js';
import { SupervisorProcess, tabulactl } from '../helpers/supervisor-process.js';
import { makeInternet } from '../helpers/vm-world.js';

const BRIDGE = 'tbr-vmn';
const TABLE = 'tabula_it_vms';
const VM = 'tabula-it-vmn-vm';
const root = await makeTestRoot('vmn');
const children: ChildProcess[] = [];

const ns = (name: string, args: string[], timeout = 20_000) =>
  run('ip', ['netns', 'exec', name, ...args], { timeout }).then(
    (r) => ({ code: 0, out: r.stdout }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
  );

async function cleanupWorld(): Promise<void> {
  for (const c of children) c.kill('SIGKILL');
  for (const name of [VM]) {
    const { stdout } = await run('ip', ['netns', 'pids', name]).catch(() => ({ stdout: '' }));
    for (const pid of stdout.split('\n').filter(Boolean)) await run('kill', ['-9', pid]).catch(() => undefined);
    await run('ip', ['netns', 'del', name]).catch(() => undefined);
    await rm(`/etc/netns/${name}`, { recursive: true, force: true });
  }
  for (const link of ['tv-vmn-vm', BRIDGE]) await run('ip', ['link', 'del', link]).catch(() => undefined);
  await run('nft', ['delete', 'table', 'inet', TABLE]).catch(() => undefined);
}

await cleanupWorld();
const internet = await makeInternet('vmn');
const config = await writeConfig(
  root,
  testConfig(root, [{ name: 'it-vmn', size: 0, spicePortBase: 5990 }]).replace(
    '[[pool]]',
    ['[vm_network]', `bridge = "${BRIDGE}"`, 'address = "10.88.0.1/24"', 'upstream_dns = ["198.51.100.53"]', 'whitelist = ["allowed.test"]', `nft_table = "${TABLE}"`, '', '[[pool]]'].join('\n'),
  ),
);
const supervisor = new SupervisorProcess(config);

t.teardown(async () => {
  await supervisor.stop();
  await cleanupWorld();
  await internet.cleanup();
  await root.cleanup();
});

/** A "VM": a namespace on the supervisor's VM bridge, its resolver the server (as DHCP says). */
async function plugVm(): Promise<void> {
  await run('ip', ['netns', 'add', VM]);
  await run('ip', ['link', 'add', 'tv-vmn-vm', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', VM]);
  await run('ip', ['link', 'set', 'tv-vmn-vm', 'master', BRIDGE, 'up']);
  await run('ip', ['-n', VM, 'link', 'set', 'eth0', 'up']);
  await run('ip', ['-n', VM, 'link', 'set', 'lo', 'up']);
  await mkdir(`/etc/netns/${VM}`, { recursive: true });
}

const UDHCPC = `#!/bin/sh
case "$1" in bound|renew)
  ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface"
  for r in $router; do ip route replace default via "$r"; done
  echo "offer ip=$ip router=\${router:-} dns=\${dns:-}";;
esac
`;

/** An HTTP GET from the VM by its own resolver: the body, or why it failed. */
async function fetchFromVm(url: string): Promise<string> {
  const script = `fetch(process.argv[1], { signal: AbortSignal.timeout(3000) }).then(async (r) => console.log('OK ' + (await r.text())), (e) => console.log('FAIL ' + (e.cause?.code ?? e.name)))`;
  return (await ns(VM, [process.execPath, '-e', script, url])).out.trim();
}

t.test('a VM gets its lease from the supervisor and reaches only whitelisted names', async (t) => {
  await supervisor.waitForLine(/event=vm-network-ready bridge=tbr-vmn/, 30_000);
  await plugVm();
  const scriptPath = `${root.dir}/udhcpc.sh`;
  await writeFile(scriptPath, UDHCPC, { mode: 0o755 });
  const lease = await ns(VM, ['busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '5', '-T', '2', '-s', scriptPath], 30_000);
  t.match(lease.out, /offer ip=10\.88\.0\.\d+ router=10\.88\.0\.1 dns=10\.88\.0\.1/, 'a lease on the VM subnet, the server as router and DNS');
  await writeFile(`/etc/netns/${VM}/resolv.conf`, 'nameserver 10.88.0.1\n');

  t.equal(await fetchFromVm('http://allowed.test:8080/'), 'OK hello from 198.51.100.10', 'a whitelisted name resolves and its server answers');
  t.match(await fetchFromVm('http://other.test:8080/'), /^FAIL (ENOTFOUND|EAI_AGAIN)/, 'a name not on the list does not resolve');
  t.match(await fetchFromVm('http://198.51.100.20:8080/'), /^FAIL /, "a raw address not on the list is not reached");
  // A service of the server listening on every address (as a careless daemon would).
  const careless = spawn(process.execPath, ['-e', "require('http').createServer((q, r) => r.end('server')).listen(5999, '0.0.0.0')"], { stdio: 'ignore' });
  children.push(careless);
  await new Promise((r) => setTimeout(r, 500));
  t.match(await fetchFromVm('http://10.88.0.1:5999/'), /^FAIL /, "the server's own services are shut to VMs");
  const vmAddress = /offer ip=(\S+)/.exec(lease.out)?.[1] ?? '';
  const blocked = (await run('nft', ['-j', 'list', 'set', 'inet', TABLE, 'blocked4'])).stdout;
  t.ok(blocked.includes(`"${vmAddress}"`), `the blocked attempts are counted for the VM (${vmAddress})`);
  const reported = await supervisor.waitForLine(new RegExp(`event=vm-blocked address=${vmAddress.replace(/\./g, '\\.')} packets=\\d+`), 30_000);
  t.ok(reported, `and reported in the journal (${reported})`);
});

t.test('tabulactl whitelist: add opens a name live, remove closes it, bad entries are refused whole', async (t) => {
  const list = await tabulactl('whitelist', 'list');
  t.equal(list.stdout.trim(), 'allowed.test', 'the configured list');
  const bad = await tabulactl('whitelist', 'set', 'allowed.test', 'bad entry', '*.com');
  t.equal(bad.code, 2, 'a bad list: exit 2');
  t.match(bad.stderr, /bad entry/, 'naming the bad entry');
  t.equal((await tabulactl('whitelist', 'list')).stdout.trim(), 'allowed.test', 'and nothing changed');

  const added = await tabulactl('whitelist', 'add', 'other.test');
  t.equal(added.code, 0, 'add other.test');
  t.equal(await fetchFromVm('http://other.test:8080/'), 'OK hello from 198.51.100.20', 'other.test opens at once');
  t.equal(await fetchFromVm('http://allowed.test:8080/'), 'OK hello from 198.51.100.10', 'allowed.test still works');
  const stored = JSON.parse(await readFile(`${root.dir}/state/whitelist.json`, 'utf8')) as string[];
  t.same(stored.sort(), ['allowed.test', 'other.test'], "staff's list is kept in the state directory");

  t.equal((await tabulactl('whitelist', 'remove', 'other.test')).code, 0, 'remove other.test');
  t.match(await fetchFromVm('http://other.test:8080/'), /^FAIL /, 'other.test is closed again');
  t.equal((await tabulactl('whitelist', 'remove', 'never.test')).code, 4, 'removing what is not there: exit 4');
});
