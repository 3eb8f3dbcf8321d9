import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { TabulaError } from '../domain/errors.js';
import type { Links } from '../ports/links.js';

const run = promisify(execFile);

/** Links through iproute2. */
export class IpLinks implements Links {
  async ensureDummyAddress(name: string, address: string): Promise<void> {
    try {
      const { stdout } = await run('ip', ['-j', 'addr', 'show', 'dev', name]).catch(() => ({ stdout: '' }));
      const info = (stdout ? JSON.parse(stdout) : []) as Array<{ operstate?: string; flags?: string[]; addr_info?: Array<{ local: string }> }>;
      // A port-less bridge holds a local address just as well, on kernels built without dummy links.
      if (info.length === 0) await run('ip', ['link', 'add', name, 'type', 'dummy']).catch(() => run('ip', ['link', 'add', name, 'type', 'bridge']));
      if (!info[0]?.addr_info?.some((a) => a.local === address)) await run('ip', ['addr', 'add', `${address}/32`, 'dev', name]);
      if (!info[0]?.flags?.includes('UP')) await run('ip', ['link', 'set', name, 'up']);
    } catch (e) {
      const err = e as { stderr?: string; message?: string };
      throw new TabulaError('internal', `cannot put ${address} on dummy interface ${name}: ${(err.stderr ?? err.message ?? String(e)).trim()}`, { cause: e });
    }
  }

  async ensureBridge(name: string, address: string, prefixLength: number): Promise<void> {
    try {
      const { stdout } = await run('ip', ['-j', 'addr', 'show', 'dev', name]).catch(() => ({ stdout: '' }));
      const info = (stdout ? JSON.parse(stdout) : []) as Array<{ flags?: string[]; addr_info?: Array<{ local: string; prefixlen: number }> }>;
      if (info.length === 0) await run('ip', ['link', 'add', name, 'type', 'bridge']);
      if (!info[0]?.addr_info?.some((a) => a.local === address && a.prefixlen === prefixLength)) await run('ip', ['addr', 'add', `${address}/${prefixLength}`, 'dev', name]);
      if (!info[0]?.flags?.includes('UP')) await run('ip', ['link', 'set', name, 'up']);
    } catch (e) {
      const err = e as { stderr?: string; message?: string };
      throw new TabulaError('internal', `cannot set up VM bridge ${name} with ${address}/${prefixLength}: ${(err.stderr ?? err.message ?? String(e)).trim()}`, { cause: e });
    }
  }

  async enableForwarding(): Promise<void> {
    try {
      await writeFile('/proc/sys/net/ipv4/ip_forward', '1\n');
    } catch (e) {
      throw new TabulaError('internal', `cannot turn on IPv4 forwarding: ${(e as Error).message}`, { cause: e });
    }
  }
}
