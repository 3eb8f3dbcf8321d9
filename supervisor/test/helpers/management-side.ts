// The management side for admin page tests: a "support laptop" in its own
// network namespace, wired to the server by a veth pair. Its own namespace
// also keeps the browser apart from the links the supervisor and libvirt
// make and remove on the host, which Chromium would otherwise take for
// network changes and abort its requests over (ERR_NETWORK_CHANGED).
import { run } from './env.js';

export interface ManagementSide {
  readonly netns: string;
  /** The server's address on this link. */
  readonly serverAddress: string;
  readonly laptopAddress: string;
  /** Removes the namespace and the link; returns the names still present afterwards. */
  cleanup(): Promise<string[]>;
}

export async function makeManagementSide(id: string): Promise<ManagementSide> {
  const netns = `tabula-it-${id}-mgmt`;
  const veth = `tv-${id}-mg`.slice(0, 15);
  const [serverAddress, laptopAddress] = ['198.18.0.1', '198.18.0.2'];
  const cleanup = async (): Promise<string[]> => {
    const { stdout } = await run('ip', ['netns', 'pids', netns]).catch(() => ({ stdout: '' }));
    for (const pid of stdout.split('\n').filter(Boolean)) await run('kill', ['-9', pid]).catch(() => undefined);
    await run('ip', ['netns', 'del', netns]).catch(() => undefined);
    await run('ip', ['link', 'del', veth]).catch(() => undefined);
    const { stdout: links } = await run('ip', ['-br', 'link']);
    const { stdout: spaces } = await run('ip', ['netns', 'list']);
    return [veth, netns].filter((n) => links.includes(`${n}@`) || links.includes(`${n} `) || spaces.split('\n').some((l) => l.split(' ')[0] === n));
  };
  await cleanup();
  await run('ip', ['netns', 'add', netns]);
  await run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
  await run('ip', ['addr', 'add', `${serverAddress}/30`, 'dev', veth]);
  await run('ip', ['link', 'set', veth, 'up']);
  await run('ip', ['-n', netns, 'addr', 'add', `${laptopAddress}/30`, 'dev', 'eth0']);
  await run('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
  await run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  return { netns, serverAddress, laptopAddress, cleanup };
}
