import { run } from './env.js';

/** libvirt as seen by virsh: an observer independent of the supervisor's own adapter. */
const URI = ['-c', 'qemu:///system'];

export interface VirshDomain {
  readonly name: string;
  readonly uuid: string;
  readonly running: boolean;
  readonly id?: number;
}

export async function virsh(...args: string[]): Promise<string> {
  const { stdout } = await run('virsh', [...URI, ...args], { timeout: 60_000 });
  return stdout;
}

export async function listDomains(prefix: string): Promise<VirshDomain[]> {
  const names = (await virsh('list', '--all', '--name')).split('\n').map((s) => s.trim()).filter((n) => n.startsWith(prefix));
  return Promise.all(
    names.map(async (name) => {
      const uuid = (await virsh('domuuid', name)).trim();
      const idText = (await virsh('domid', name)).trim();
      const id = /^\d+$/.test(idText) ? Number(idText) : undefined;
      return { name, uuid, running: id !== undefined, ...(id === undefined ? {} : { id }) };
    }),
  );
}

/** Removes every domain whose name starts with prefix; returns the names it had to remove. */
export async function removeDomains(prefix: string): Promise<string[]> {
  const doms = await listDomains(prefix);
  for (const d of doms) {
    if (d.running) await virsh('destroy', d.name).catch(() => undefined);
    await virsh('undefine', '--nvram', d.name).catch(() => virsh('undefine', d.name).catch(() => undefined));
  }
  return doms.map((d) => d.name);
}

/** The QEMU process of a running domain (proves "not rebooted" across a supervisor restart). */
export async function qemuPid(name: string): Promise<number | undefined> {
  const { stdout } = await run('pgrep', ['-f', `guest=${name},`]).catch(() => ({ stdout: '' }));
  const pid = Number(stdout.trim().split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}
