// The VMs' "Internet" for tests: 198.51.100.0/24 in a namespace behind a veth
// from the host, with an upstream DNS (.53) that knows allowed.test (.10) and
// other.test (.20), and a web server on each of those addresses (port 8080).
import { spawn, type ChildProcess } from 'node:child_process';
import { run } from './env.js';

export interface Internet {
  readonly dns: string;
  cleanup(): Promise<void>;
}

export const ALLOWED = { name: 'allowed.test', address: '198.51.100.10' };
export const OTHER = { name: 'other.test', address: '198.51.100.20' };

async function removeNetns(name: string): Promise<void> {
  const { stdout } = await run('ip', ['netns', 'pids', name]).catch(() => ({ stdout: '' }));
  for (const pid of stdout.split('\n').filter(Boolean)) await run('kill', ['-9', pid]).catch(() => undefined);
  await run('ip', ['netns', 'del', name]).catch(() => undefined);
}

/** `id` keeps names apart (netns tabula-it-ID-net, link tv-ID-up). */
export async function makeInternet(id: string): Promise<Internet> {
  const netns = `tabula-it-${id}-net`;
  const link = `tv-${id}-up`.slice(0, 15);
  const children: ChildProcess[] = [];
  const cleanup = async () => {
    for (const c of children) c.kill('SIGKILL');
    await removeNetns(netns);
    await run('ip', ['link', 'del', link]).catch(() => undefined);
  };
  await cleanup();
  await run('ip', ['netns', 'add', netns]);
  await run('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
  await run('ip', ['addr', 'add', '198.51.100.1/24', 'dev', link]);
  await run('ip', ['link', 'set', link, 'up']);
  for (const a of ['198.51.100.53', ALLOWED.address, OTHER.address]) await run('ip', ['-n', netns, 'addr', 'add', `${a}/24`, 'dev', 'eth0']);
  await run('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
  await run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  await run('ip', ['-n', netns, 'route', 'add', 'default', 'via', '198.51.100.1']);
  children.push(
    spawn(
      'ip',
      ['netns', 'exec', netns, 'dnsmasq', '--keep-in-foreground', '--no-resolv', '--no-hosts', '--listen-address=198.51.100.53', '--bind-interfaces', `--address=/${ALLOWED.name}/${ALLOWED.address}`, `--address=/${OTHER.name}/${OTHER.address}`, '--pid-file='],
      { stdio: 'ignore' },
    ),
  );
  for (const a of [ALLOWED.address, OTHER.address]) {
    children.push(spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', `require('http').createServer((q, r) => r.end('hello from ${a}')).listen(8080, '${a}')`], { stdio: 'ignore' }));
  }
  return { dns: '198.51.100.53', cleanup };
}
