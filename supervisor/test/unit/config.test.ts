import t, { type Test } from 'tap';
import { parseConfig, withPoolSize, type Config } from '../../src/config/config.js';
import { TabulaError } from '../../src/domain/errors.js';

const SOURCE = '/etc/tabula/supervisor.toml';

function pool(name: string, extra = ''): string {
  return `[[pool]]\nname = "${name}"\ngolden_image = "/srv/golden/${name}.qcow2"\nsize = 2\n${extra}\n`;
}

/** The config-invalid message, or a failure when the text was accepted. */
function refusal(t: Test, text: string): string {
  try {
    parseConfig(text, SOURCE);
  } catch (e) {
    t.type(e, TabulaError);
    t.equal((e as TabulaError).code, 'config-invalid');
    t.ok((e as TabulaError).message.startsWith(`${SOURCE}: `), 'the message names the file');
    return (e as TabulaError).message;
  }
  t.fail('config was accepted');
  return '';
}

t.test('a full config is read with defaults applied', async (t) => {
  const config = parseConfig(
    `[supervisor]
state_dir = "/var/lib/kiosk"
hypervisor = "qemu"
boot_timeout = 90
max_parallel_boots = 3
heartbeat = 2.5
spice_listen = "0.0.0.0"

[[pool]]
name = "desktop"
golden_image = "/srv/golden/desktop.qcow2"
size = 4

[[pool]]
name = "linux-2"
golden_image = "/srv/golden/linux.qcow2"
size = 1
vcpus = 4
memory = 4096
spice_port_base = 6000
storage_dir = "/mnt/fast/linux"
firmware = "uefi"
video = "virtio"
kernel = "/srv/golden/vmlinuz"
initrd = "/srv/golden/initrd.img"
cmdline = "root=/dev/vda quiet"
boot_timeout = 30
`,
    SOURCE,
  );
  t.same(config, {
    source: SOURCE,
    stateDir: '/var/lib/kiosk',
    hypervisor: 'qemu',
    maxParallelBoots: 3,
    heartbeatMs: 2500,
    spiceListen: '0.0.0.0',
    metricsListen: { host: '127.0.0.1', port: 9184 },
    startMode: 'adopt',
    memoryReserveMiB: 1024,
    diskReserveMiB: 1024,
    factoryResetCommand: ['/usr/lib/tabula/factory-reset'],
    pools: [
      {
        name: 'desktop',
        goldenImage: '/srv/golden/desktop.qcow2',
        size: 4,
        vcpus: 2,
        memoryMiB: 2048,
        spicePortBase: 5920,
        storageDir: '/var/lib/kiosk/pools/desktop',
        firmware: 'bios',
        video: 'qxl',
        bootTimeoutMs: 90_000,
        consoleTickets: true,
        limits: { idleTimeoutMs: 300_000, maxSessionMs: 14_400_000, warnBeforeMs: 60_000 },
      },
      {
        name: 'linux-2',
        goldenImage: '/srv/golden/linux.qcow2',
        size: 1,
        vcpus: 4,
        memoryMiB: 4096,
        spicePortBase: 6000,
        storageDir: '/mnt/fast/linux',
        firmware: 'uefi',
        video: 'virtio',
        kernel: '/srv/golden/vmlinuz',
        initrd: '/srv/golden/initrd.img',
        cmdline: 'root=/dev/vda quiet',
        bootTimeoutMs: 30_000,
        consoleTickets: true,
        limits: { idleTimeoutMs: 300_000, maxSessionMs: 14_400_000, warnBeforeMs: 60_000 },
      },
    ],
  } satisfies Config);
});

t.test('an empty file is a valid config with no pools and the documented defaults', async (t) => {
  t.same(parseConfig('', SOURCE), {
    source: SOURCE,
    stateDir: '/var/lib/tabula',
    hypervisor: 'kvm',
    maxParallelBoots: 2,
    heartbeatMs: 5000,
    spiceListen: '127.0.0.1',
    metricsListen: { host: '127.0.0.1', port: 9184 },
    startMode: 'adopt',
    memoryReserveMiB: 1024,
    diskReserveMiB: 1024,
    factoryResetCommand: ['/usr/lib/tabula/factory-reset'],
    pools: [],
  });
});

t.test('metrics_listen: ADDRESS:PORT, or "" for no metrics endpoint', async (t) => {
  t.same(parseConfig('[supervisor]\nmetrics_listen = "10.0.0.2:9100"', SOURCE).metricsListen, { host: '10.0.0.2', port: 9100 });
  t.equal(parseConfig('[supervisor]\nmetrics_listen = ""', SOURCE).metricsListen, undefined);
  for (const bad of ['localhost:9100', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', '300.0.0.1:9100']) {
    t.throws(() => parseConfig(`[supervisor]\nmetrics_listen = "${bad}"`, SOURCE), { code: 'config-invalid', message: /supervisor\.metrics_listen/ }, bad);
  }
});

t.test('start_mode: "adopt" by default, or "wipe"; anything else is refused naming the key', async (t) => {
  t.equal(parseConfig('', SOURCE).startMode, 'adopt');
  t.equal(parseConfig('[supervisor]\nstart_mode = "adopt"', SOURCE).startMode, 'adopt');
  t.equal(parseConfig('[supervisor]\nstart_mode = "wipe"', SOURCE).startMode, 'wipe');
  t.match(refusal(t, '[supervisor]\nstart_mode = "clear"\n'), /supervisor\.start_mode: .*'adopt' \| 'wipe'/);
  t.match(refusal(t, '[supervisor]\nstart_mode = true\n'), /supervisor\.start_mode: /);
  t.match(refusal(t, '[supervisor]\nstart_mode = "WIPE"\n'), /supervisor\.start_mode: /, 'case matters');
});

t.test('session limits per pool: idle_timeout, max_session, session_warning in seconds; 0 switches a limit off', async (t) => {
  const c = parseConfig(`${pool('a', 'idle_timeout = 120\nmax_session = 0\nsession_warning = 15')}`, SOURCE);
  t.same(c.pools[0]?.limits, { idleTimeoutMs: 120_000, maxSessionMs: 0, warnBeforeMs: 15_000 });
  t.throws(() => parseConfig(pool('a', 'idle_timeout = -1'), SOURCE), { code: 'config-invalid', message: /pool\[0\]\.idle_timeout/ });
});

t.test('a pool without boot_timeout inherits the supervisor one, in ms', async (t) => {
  const config = parseConfig(`[supervisor]\nboot_timeout = 45\n${pool('a')}${pool('b', 'spice_port_base = 6000\nboot_timeout = 7')}`, SOURCE);
  t.equal(config.pools[0]?.bootTimeoutMs, 45_000);
  t.equal(config.pools[1]?.bootTimeoutMs, 7_000);
  t.equal(parseConfig(pool('a'), SOURCE).pools[0]?.bootTimeoutMs, 180_000, 'the default is 180 s');
});

t.test('storage_dir defaults to <state_dir>/pools/<name>', async (t) => {
  t.equal(parseConfig(`[supervisor]\nstate_dir = "/data"\n${pool('desk')}`, SOURCE).pools[0]?.storageDir, '/data/pools/desk');
  t.equal(parseConfig(pool('desk'), SOURCE).pools[0]?.storageDir, '/var/lib/tabula/pools/desk');
});

t.test('an unknown key is refused, naming where it is and what it is', async (t) => {
  t.match(refusal(t, pool('a', 'szie = 3')), /pool\[0\].*\bszie\b/);
  t.match(refusal(t, `${pool('a')}${pool('b', 'spice_port_base = 6000\nvpcus = 2')}`), /pool\[1\].*\bvpcus\b/);
  t.match(refusal(t, '[supervisor]\nhartbeat = 3\n'), /supervisor\b.*\bhartbeat\b/);
  t.match(refusal(t, 'pools = 3\n'), /\bpools\b/);
});

t.test('a value of the wrong type is refused, naming the key', async (t) => {
  t.match(refusal(t, pool('a').replace('size = 2', 'size = "2"')), /pool\[0\]\.size: /);
  t.match(refusal(t, '[supervisor]\nmax_parallel_boots = true\n'), /supervisor\.max_parallel_boots: /);
  t.match(refusal(t, '[supervisor]\nhypervisor = "xen"\n'), /supervisor\.hypervisor: /);
  t.match(refusal(t, '[supervisor]\nspice_listen = "localhost"\n'), /supervisor\.spice_listen: /);
  t.match(refusal(t, 'pool = { name = "a" }\n'), /^[^:]+: line 1: pool: /);
});

t.test('a pool size outside 0..64 or not whole is refused, naming the key', async (t) => {
  t.match(refusal(t, pool('a').replace('size = 2', 'size = 65')), /pool\[0\]\.size: .*64/);
  t.match(refusal(t, pool('a').replace('size = 2', 'size = -1')), /pool\[0\]\.size: /);
  t.match(refusal(t, pool('a').replace('size = 2', 'size = 1.5')), /pool\[0\]\.size: /);
  t.equal(parseConfig(pool('a').replace('size = 2', 'size = 0'), SOURCE).pools[0]?.size, 0, 'an empty pool is allowed');
  t.equal(parseConfig(pool('a').replace('size = 2', 'size = 64'), SOURCE).pools[0]?.size, 64);
});

t.test('a bad pool name is refused, naming the key', async (t) => {
  for (const name of ['Desktop', '1st', 'a b', 'a_b', '', 'x'.repeat(25), "a'b"]) {
    t.match(refusal(t, pool(name)), /pool\[0\]\.name: /, JSON.stringify(name));
  }
  t.equal(parseConfig(pool('x'.repeat(24)), SOURCE).pools[0]?.name, 'x'.repeat(24), '24 characters are fine');
});

t.test('relative paths are refused, naming the key', async (t) => {
  t.match(refusal(t, pool('a').replace('"/srv/golden/a.qcow2"', '"golden/a.qcow2"')), /pool\[0\]\.golden_image: must be an absolute path/);
  t.match(refusal(t, pool('a', 'storage_dir = "pools/a"')), /pool\[0\]\.storage_dir: must be an absolute path/);
  t.match(refusal(t, '[supervisor]\nstate_dir = "var/lib/tabula"\n'), /supervisor\.state_dir: must be an absolute path/);
});

t.test('text that is not TOML is refused as such', async (t) => {
  t.match(refusal(t, '[supervisor\nheartbeat = 3\n'), /not valid TOML/);
  t.match(refusal(t, 'heartbeat = \n'), /not valid TOML/);
});

t.test('two pools with the same name are refused', async (t) => {
  t.match(refusal(t, `${pool('a')}${pool('a', 'spice_port_base = 6000\nstorage_dir = "/other"')}`), /pool\[1\]\.name: ["']a["'] is also the name of pool\[0\]/);
});

t.test('overlapping spice port ranges are refused, and adjacent ones accepted', async (t) => {
  // pool a (size 2) takes 5920-5921.
  t.match(refusal(t, `${pool('a')}${pool('b', 'spice_port_base = 5921')}`), /pool\[1\]\.spice_port_base: ports 5921-5922 overlap pool\[0\] \(a\)/);
  t.match(refusal(t, `${pool('a', 'spice_port_base = 5922')}${pool('b', 'spice_port_base = 5921')}`), /pool\[1\]\.spice_port_base: .*overlap pool\[0\]/);
  t.equal(parseConfig(`${pool('a')}${pool('b', 'spice_port_base = 5922')}`, SOURCE).pools.length, 2);
});

t.test('a port range running past 65535 is refused', async (t) => {
  t.match(refusal(t, pool('a', 'spice_port_base = 65535')), /pool\[0\]\.spice_port_base: .*65535/);
  t.equal(parseConfig(pool('a', 'spice_port_base = 65534'), SOURCE).pools[0]?.spicePortBase, 65534);
});

t.test('two pools sharing a storage directory are refused', async (t) => {
  t.match(
    refusal(t, `${pool('a', 'storage_dir = "/data/vms"')}${pool('b', 'spice_port_base = 6000\nstorage_dir = "/data/vms"')}`),
    /pool\[1\]\.storage_dir: \/data\/vms is also used by pool\[0\]/,
  );
  t.match(
    refusal(t, `${pool('a')}${pool('b', 'spice_port_base = 6000\nstorage_dir = "/var/lib/tabula/pools/a"')}`),
    /pool\[1\]\.storage_dir: /,
    'also against a defaulted storage_dir',
  );
});

t.test('initrd or cmdline without kernel is refused, naming kernel', async (t) => {
  t.match(refusal(t, pool('a', 'initrd = "/srv/initrd"')), /pool\[0\]\.kernel: initrd and cmdline need kernel/);
  t.match(refusal(t, pool('a', 'cmdline = "quiet"')), /pool\[0\]\.kernel: /);
  t.equal(parseConfig(pool('a', 'kernel = "/srv/vmlinuz"'), SOURCE).pools[0]?.kernel, '/srv/vmlinuz');
});

t.test('every problem is reported at once', async (t) => {
  const message = refusal(t, pool('a', 'vcpus = 0\nmemory = 1'));
  t.match(message, /pool\[0\]\.vcpus: /);
  t.match(message, /pool\[0\]\.memory: /);
});

t.test('the returned config is deeply frozen', async (t) => {
  const config = parseConfig(pool('a'), SOURCE);
  t.ok(Object.isFrozen(config));
  t.ok(Object.isFrozen(config.pools));
  t.ok(Object.isFrozen(config.pools[0]));
  t.throws(() => {
    (config.pools[0] as { size: number }).size = 9;
  }, TypeError);
  t.throws(() => {
    (config.pools as unknown as unknown[]).push({});
  }, TypeError);
});

t.test('a station LAN: defaults of the seed, consoles on their own address, ports kept apart', async (t) => {
  const base = '[[pool]]\nname = "desk"\ngolden_image = "/g.qcow2"\nsize = 4\nconsole_tickets = false\n';
  const c = parseConfig(`[stations]\ninterface = "enp5s0"\n\n${base}`, SOURCE);
  t.same(c.stations, {
    interface: 'enp5s0',
    address: '169.254.24.1',
    signalPort: 5905,
    spicePort: 5906,
    connectWaitMs: 10_000,
    forwardGraceMs: 3_000,
    consoleAddress: '169.254.25.1',
    consoleInterface: 'tabula-console',
    nftTable: 'tabula',
    httpPort: 80,
    slideshowDir: '/var/lib/tabula/slideshow',
    dhcp: true,
    lan: {
      interface: 'enp5s0',
      address: '169.254.24.1',
      prefixLength: 24,
      dhcpRange: { from: '169.254.24.100', to: '169.254.24.250' },
      leaseSeconds: 3600,
      reservations: [],
      ntp: true,
      httpPort: 80,
    },
  });
  t.equal(c.spiceListen, '169.254.25.1', 'VM consoles listen on the console address');
  t.throws(() => parseConfig(`[stations]\ninterface = "enp5s0"\nhttp_port = 5905\n\n${base}`, SOURCE), /stations\.http_port: 5905 is also the signal or Spice port/);
  t.throws(() => parseConfig(`[stations]\ninterface = "enp5s0"\ndhcp_range = "10.0.0.5-10.0.0.9"\n\n${base}`, SOURCE), /stations: .*10\.0\.0\.5/, 'a DHCP range outside the station subnet');
  const reserved = `[stations]\ninterface = "enp5s0"\n[[stations.reservation]]\nmac = "52:54:00:aa:bb:cc"\naddress = "169.254.24.20"\nname = "kiosk-1"\n\n${base}`;
  t.same(parseConfig(reserved, SOURCE).stations?.lan.reservations, [{ mac: '52:54:00:aa:bb:cc', address: '169.254.24.20', name: 'kiosk-1' }]);
  t.throws(() => parseConfig(reserved.replace('52:54:00:aa:bb:cc', 'nonsense'), SOURCE), /stations: .*nonsense/, 'a bad MAC is refused, naming it');
  t.equal(c.pools[0]?.consoleTickets, false);
  t.throws(() => parseConfig(`[stations]\ninterface = "enp5s0"\nspice_port = 5921\n\n${base}`, SOURCE), /stations\.spice_port: 5921 is inside pool\[0\]'s console ports/);
  t.throws(() => parseConfig(`[stations]\ninterface = "enp5s0"\nconsole_address = "169.254.24.1"\n\n${base}`, SOURCE), /console_address: must differ/);
  t.throws(() => parseConfig(`[stations]\ninterface = "a-very-long-interface-name"\n\n${base}`, SOURCE), /stations\.interface: must be a network interface name/);
  t.throws(() => parseConfig(`[stations]\n\n${base}`, SOURCE), /stations\.interface: Required/);
});

t.test('vm_network: the VMs\' subnet, its whitelist checked at load, the station LAN never opened', async (t) => {
  const st = '[stations]\ninterface = "enp5s0"\n';
  const base = '[[pool]]\nname = "desk"\ngolden_image = "/g.qcow2"\nsize = 1\n';
  const c = parseConfig(`${st}\n[vm_network]\nupstream_dns = ["192.0.2.53"]\nwhitelist = ["*.example.org", "203.0.113.0/24"]\n\n${base}`, SOURCE);
  t.match(c.vmNetwork, { bridge: 'tabula-vms', serverAddress: '10.88.0.1', prefixLength: 24, subnet: '10.88.0.0/24', table: 'tabula_vms', forbidden: ['169.254.24.0/24', '169.254.25.1/32'] });
  t.equal(c.vmNetwork?.whitelist.length, 2);
  t.throws(() => parseConfig(`${st}\n[vm_network]\nwhitelist = ["169.254.24.0/24"]\n\n${base}`, SOURCE), /vm_network\.whitelist: .*169\.254\.24\.0\/24/, 'the station LAN cannot be whitelisted');
  t.throws(() => parseConfig(`[vm_network]\nwhitelist = ["example.org"]\n\n${base}`, SOURCE), /vm_network\.upstream_dns: whitelisted names need/, 'names need a DNS server');
  t.throws(() => parseConfig(`[vm_network]\naddress = "10.88.0.1"\n\n${base}`, SOURCE), /vm_network\.address/, 'an address without a prefix');
  t.throws(() => parseConfig(`${st}\n[vm_network]\nbridge = "enp5s0"\n\n${base}`, SOURCE), /vm_network\.bridge: "enp5s0" is the station interface/);
});

t.test('a refusal names the line of the key, counting [[pool]] sections', async (t) => {
  const text = `# comment
[supervisor]
heartbeat = 2

${pool('a')}
${pool('b', 'memory = 1')}
${pool('c', 'sise = 3')}`;
  const msg = refusal(t, text);
  t.match(msg, /line 15: pool\[1\]\.memory: Number must be greater than or equal to 64/, 'the second pool\'s memory, on its own line');
  t.match(msg, /line 21: pool\[2\]: unknown key 'sise'/, 'an unknown key, on its line');
  t.match(refusal(t, '[supervisor]\nheartbeat = 1\nstart_mode = "burn"\n'), /^\/etc\/tabula\/supervisor\.toml: line 3: supervisor\.start_mode: /);
  t.match(refusal(t, '[supervisor]\nheartbeat = \n'), /line 2: not valid TOML/, 'a syntax error names its line');
  const overlap = `${pool('a', 'spice_port_base = 6000')}\n${pool('b', 'spice_port_base = 6001')}`;
  t.match(refusal(t, overlap), /line 11: pool\[1\]\.spice_port_base: ports 6001-6002 overlap pool\[0\] \(a\)/, 'a check across pools names the line too');
  t.match(refusal(t, '[vm_network]\naddress = "10.88.0.1/24"\nwhitelist = ["example.org"]\n'), /line 1: vm_network\.upstream_dns: /, 'a missing key: its table\'s line');
});

t.test('withPoolSize: a new size, checked as the file would be', async (t) => {
  const config = parseConfig(`${pool('a', 'spice_port_base = 6000')}\n${pool('b', 'spice_port_base = 6002')}`, SOURCE);
  const grown = withPoolSize(config, 'b', 5);
  t.same(grown.pools.map((p) => p.size), [2, 5], 'only that pool changes');
  t.equal(config.pools[1]?.size, 2, 'the old config is untouched');
  t.ok(Object.isFrozen(grown.pools[1]), 'frozen like any config');
  t.same(withPoolSize(config, 'a', 0).pools.map((p) => p.size), [0, 2], '0 empties a pool');
  const refused = (pool: string, size: number, code: string, message: RegExp) => {
    try {
      withPoolSize(config, pool, size);
      t.fail(`size ${size} was accepted`);
    } catch (e) {
      t.equal((e as TabulaError).code, code);
      t.match((e as TabulaError).message, message);
    }
  };
  refused('a', 65, 'invalid-argument', /size 65 is out of range: a pool keeps 0 to 64 VMs/);
  refused('a', -1, 'invalid-argument', /out of range/);
  refused('a', 1.5, 'invalid-argument', /out of range/);
  refused('a', 3, 'invalid-argument', /pool a cannot keep 3 VMs: pool\[1\]\.spice_port_base: ports 6002-6003 overlap pool\[0\] \(a\)/);
  refused('nope', 1, 'not-found', /no pool named "nope"/);
});

t.test('factory_reset_command: an argv whose program is an absolute path', async (t) => {
  t.same(parseConfig('[supervisor]\nfactory_reset_command = ["/opt/reset", "--quiet"]\n', SOURCE).factoryResetCommand, ['/opt/reset', '--quiet']);
  t.match(refusal(t, '[supervisor]\nfactory_reset_command = ["reset"]\n'), /line 2: supervisor\.factory_reset_command: the program \(the first element\) must be an absolute path/);
  t.match(refusal(t, '[supervisor]\nfactory_reset_command = []\n'), /supervisor\.factory_reset_command: /);
});
