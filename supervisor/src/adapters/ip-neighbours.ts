import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Neighbours } from '../ports/neighbours.js';

const run = promisify(execFile);
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** `ip -j neigh`: a station that just opened a TCP connection is in the table. */
export class IpNeighbours implements Neighbours {
  async macOf(address: string): Promise<string | undefined> {
    try {
      const { stdout } = await run('ip', ['-j', 'neigh', 'show', 'to', address], { timeout: 2_000 });
      const entries = JSON.parse(stdout || '[]') as Array<{ lladdr?: string }>;
      const mac = entries.find((e) => e.lladdr !== undefined && MAC.test(e.lladdr))?.lladdr;
      return mac;
    } catch {
      // The MAC is for the record only: a session is never refused for want of it.
      return undefined;
    }
  }
}
