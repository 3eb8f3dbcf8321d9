// A station's side of the station LAN services: a DHCP exchange with busybox
// udhcpc and an NTP measurement with `chronyd -Q` (which never sets the clock).
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './env.js';
import type { Station } from './station-lan.js';

/** What udhcpc's script saw on `bound`; it also puts the address on the station's eth0. */
export interface Offer {
  ip: string;
  mask: string;
  router: string;
  ntpsrv: string;
  opt224: string;
  hostname: string;
}

const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    echo "offer ip=$ip mask=$mask router=\${router:-} ntpsrv=\${ntpsrv:-} opt224=\${opt224:-} hostname=\${hostname:-}"
    ;;
esac
`;

/** Writes udhcpc's script into `dir`; returns its path. */
export async function udhcpcScript(dir: string): Promise<string> {
  const script = join(dir, 'udhcpc.sh');
  await writeFile(script, UDHCPC_SCRIPT);
  await chmod(script, 0o755);
  return script;
}

export async function mac(station: Station): Promise<string> {
  const [link] = JSON.parse((await run('ip', ['-n', station.netns, '-j', 'link', 'show', 'eth0'])).stdout) as Array<{ address: string }>;
  if (link === undefined) throw new Error(`no eth0 in ${station.netns}`);
  return link.address;
}

/** One DHCP exchange from the station (gives up after ~10 s); undefined when no lease came. */
export async function dhcp(station: Station, script: string, hostname: string): Promise<{ offer: Offer | undefined; output: string }> {
  const r = await station.exec(['busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '5', '-T', '2', '-s', script, '-x', `hostname:${hostname}`], 30_000);
  const line = r.stdout.split('\n').find((l) => l.startsWith('offer '));
  const offer = line === undefined ? undefined : (Object.fromEntries(line.slice(6).split(' ').map((kv) => kv.split('=', 2))) as unknown as Offer);
  return { offer, output: `${r.stdout}\n${r.stderr}`.trim() };
}

/** chronyd as a one-shot NTP client: measures the offset to the server and prints it, never touching the clock (-Q). */
export async function ntpQuery(station: Station, server = '169.254.24.1'): Promise<string> {
  const r = await station.exec(['chronyd', '-Q', '-t', '5', `server ${server} iburst maxsamples 1`], 20_000);
  return `${r.stdout}\n${r.stderr}`;
}
