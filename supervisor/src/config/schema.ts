import { z } from 'zod';
import { TIMEOUT_BOUNDS, type TimeoutKey } from '../domain/pool-timeouts.js';

/** The most VMs one pool may keep (config and D-Bus Resize alike). */
export const POOL_SIZE_MAX = 64;

const poolName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,23}$/, "must be 1-24 characters: lower-case letters, digits and '-', starting with a letter");
const absolutePath = z.string().regex(/^\//, 'must be an absolute path');
const port = z.number().int().min(1024).max(65535);
const seconds = z.number().positive().max(86_400);
/** A pool timeout in seconds, within the bounds staff's changes are held to as well. */
function timeout(key: TimeoutKey) {
  const b = TIMEOUT_BOUNDS[key];
  return (b.aboveMin ? z.number().gt(b.min) : z.number().min(b.min)).max(b.max);
}

const poolSchema = z
  .object({
    name: poolName,
    golden_image: absolutePath,
    size: z.number().int().min(0).max(POOL_SIZE_MAX),
    vcpus: z.number().int().min(1).max(64).default(2),
    memory: z.number().int().min(64).max(1_048_576).describe('MiB').default(2048),
    spice_port_base: port.default(5920),
    storage_dir: absolutePath.optional(),
    firmware: z.enum(['bios', 'uefi']).default('bios'),
    video: z.enum(['qxl', 'vga', 'virtio']).default('qxl'),
    /** Direct kernel boot, for Linux golden images without a boot loader. */
    kernel: absolutePath.optional(),
    initrd: absolutePath.optional(),
    cmdline: z.string().max(4096).optional(),
    boot_timeout: timeout('boot_timeout').optional(),
    /**
     * Spice tickets (one-time passwords) on the consoles. Stations speaking the
     * original protocol (v0) cannot give one: their pool needs false.
     */
    console_tickets: z.boolean().default(true),
    /** Seconds without keyboard or mouse input (reported by v1 stations) that end a session; 0: never. */
    idle_timeout: timeout('idle_timeout').default(300),
    /** Longest a session may last, in seconds; 0: no limit. The backstop for v0 stations, which report no input. */
    max_session: timeout('max_session').default(14_400),
    /** Seconds before a limit ends a session that the station is warned (its kiosk counts down). */
    session_warning: timeout('session_warning').default(60),
  })
  .strict()
  .refine((p) => p.kernel !== undefined || (p.initrd === undefined && p.cmdline === undefined), {
    message: 'initrd and cmdline need kernel',
    path: ['kernel'],
  });

const ipv4 = z.string().ip({ version: 'v4' });
const interfaceName = z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, 'must be a network interface name (1-15 characters)');

/** The station LAN: where kiosks ask for a desktop and reach its console (the seed's client.conf and vm_manager.conf). */
const stationsSchema = z
  .object({
    interface: interfaceName,
    address: ipv4.default('169.254.24.1'),
    signal_port: port.default(5905),
    spice_port: port.default(5906),
    /** Seconds a station has to connect its Spice client after a hand-off (count_conn_tryes). */
    connect_wait: z.number().int().min(1).max(600).default(10),
    /** Seconds the forward stays open after the client connected, for its other Spice channels. */
    forward_grace: z.number().min(0).max(60).default(3),
    /** Where VM consoles listen: an address on a dummy interface, reachable from stations only through a forward. */
    console_address: ipv4.default('169.254.25.1'),
    console_interface: interfaceName.default('tabula-console'),
    /** The station subnet is address/prefix_length. */
    prefix_length: z.number().int().min(8).max(30).default(24),
    /** Serve DHCP on the station interface (dnsmasq, run by the supervisor). */
    dhcp: z.boolean().default(true),
    /** "FIRST-LAST": addresses for stations without a reservation. */
    dhcp_range: z
      .string()
      .regex(/^\d{1,3}(\.\d{1,3}){3}-\d{1,3}(\.\d{1,3}){3}$/, 'must be "FIRST-LAST", two IPv4 addresses')
      .default('169.254.24.100-169.254.24.250'),
    lease_time: z.number().int().min(120).max(604_800).default(3600),
    /** Known stations: a fixed address and a name by MAC (outside dhcp_range). */
    reservation: z.array(z.object({ mac: z.string(), address: ipv4, name: z.string() }).strict()).default([]),
    /** Serve NTP to the stations (chrony, run by the supervisor), and tell them by DHCP. */
    ntp: z.boolean().default(true),
    /** Where the server itself takes its time from; none: it serves its own clock. */
    ntp_upstream: z.array(z.string().min(1).max(253)).default([]),
    /** The stations' HTTP endpoint on `address` (client.conf, the slideshow); 0 for none. */
    http_port: z.number().int().min(0).max(65535).default(80),
    /** Where staff put the slideshow's pictures (default STATE_DIR/slideshow). */
    slideshow_dir: absolutePath.optional(),
    /** The nftables table Tabula owns (inet family). */
    nft_table: z.string().regex(/^[a-z][a-z0-9_]{0,31}$/).default('tabula'),
  })
  .strict();

/** The VMs' own network: a bridge behind the server, confined to DHCP, DNS and the whitelist. */
const vmNetworkSchema = z
  .object({
    bridge: interfaceName.default('tabula-vms'),
    /** The server's address on the bridge, with the VM subnet's prefix. */
    address: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'must be "ADDRESS/PREFIX", e.g. "10.88.0.1/24"').default('10.88.0.1/24'),
    /** DNS servers the VMs' resolver asks for whitelisted names. */
    upstream_dns: z.array(ipv4).default([]),
    /** Names (`example.org`, `*.example.org`) and addresses or CIDRs the VMs may reach; staff change it with `tabulactl whitelist`. */
    whitelist: z.array(z.string()).default([]),
    nft_table: z.string().regex(/^[a-z][a-z0-9_]{0,31}$/).default('tabula_vms'),
    lease_time: z.number().int().min(120).max(604_800).default(3600),
    /** Seconds an answer is cached and handed out for. */
    dns_ttl: z.number().int().min(5).max(3600).default(60),
    /** Seconds an address learnt for a whitelisted name stays open after its last new connection. */
    resolved_timeout: z.number().int().min(30).max(86_400).default(600),
    /** Source-NAT the VMs' traffic to the server's address on the way out. */
    masquerade: z.boolean().default(true),
  })
  .strict();

/**
 * The admin web page (docs/admin-web.md): served on the management side only.
 * Without this section there is none.
 */
const adminSchema = z
  .object({
    /** Addresses to listen on; empty: every address (the station LAN's is refused all the same). */
    listen: z.array(z.string().ip({ message: 'must be an IP address' })).default([]),
    https_port: z.number().int().min(1).max(65535).default(443),
    /** Plain HTTP on 127.0.0.1 only, for development and tests; absent: none. */
    http_loopback_port: z.number().int().min(1).max(65535).optional(),
    /** Minutes without a request after which a login ends. */
    session_idle: z.number().int().min(1).max(24 * 60).default(30),
  })
  .strict();

export const configSchema = z
  .object({
    supervisor: z
      .object({
        state_dir: absolutePath.default('/var/lib/tabula'),
        /** "kvm" on real hardware; "qemu" is software emulation (slow, works everywhere). */
        hypervisor: z.enum(['kvm', 'qemu']).default('kvm'),
        boot_timeout: timeout('boot_timeout').default(180),
        max_parallel_boots: z.number().int().min(1).max(64).default(2),
        heartbeat: seconds.default(5),
        spice_listen: z.string().ip({ version: 'v4' }).default('127.0.0.1'),
        /** Prometheus metrics over HTTP, "ADDRESS:PORT" (keep it local); "" for none. */
        metrics_listen: z
          .string()
          .regex(/^$|^(\d{1,3}(\.\d{1,3}){3}):(\d{1,5})$/, 'must be "ADDRESS:PORT" (an IPv4 address) or "" for none')
          .default('127.0.0.1:9184'),
        /**
         * What to do with the VMs and disks found at start-up: "adopt" takes them over as
         * they are; "wipe" destroys every Tabula VM and deletes its disks first, then builds
         * the pools afresh (the seed's emergency vm_clear.sh, at every start).
         */
        start_mode: z.enum(['adopt', 'wipe']).default('adopt'),
        /** MiB of host memory kept free: no VM is started that would take MemAvailable under it. */
        memory_reserve: z.number().int().min(0).max(1_048_576).default(1024),
        /** MiB kept free on each pool's storage filesystem: no disk is cloned under it. */
        disk_reserve: z.number().int().min(0).max(1_048_576).default(1024),
        /**
         * What D-Bus FactoryReset runs (an argv: the program, then its own arguments), with one
         * more argument, "keep-images" or "erase-all". The appliance's script does the reset.
         */
        factory_reset_command: z
          .array(z.string().min(1))
          .min(1)
          .refine((argv) => argv[0]?.startsWith('/') === true, 'the program (the first element) must be an absolute path')
          .default(['/usr/lib/tabula/factory-reset']),
      })
      .strict()
      .default({}),
    stations: stationsSchema.optional(),
    vm_network: vmNetworkSchema.optional(),
    admin: adminSchema.optional(),
    pool: z.array(poolSchema).default([]),
  })
  .strict();

export type RawConfig = z.infer<typeof configSchema>;
