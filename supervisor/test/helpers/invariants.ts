// The crash-safety invariants, watched from outside the supervisor (virsh,
// the storage directory, nft, the session log): what must hold whenever and
// however the supervisor died.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './env.js';
import { virsh } from './virsh.js';

export interface DomainView {
  readonly name: string;
  readonly uuid: string;
  readonly state?: string;
  readonly session?: string;
  /** The station the session was handed to. */
  readonly station?: string;
  readonly connected: boolean;
}

/** Every Tabula domain with `prefix`, with its record as libvirt holds it. */
export async function domains(prefix: string): Promise<DomainView[]> {
  const names = (await virsh('list', '--all', '--name')).split('\n').map((s) => s.trim()).filter((n) => n.startsWith(prefix));
  const out: DomainView[] = [];
  for (const name of names) {
    try {
      const uuid = (await virsh('domuuid', name)).trim();
      const meta = await virsh('metadata', name, 'urn:tabula:vm:1').catch(() => '');
      const attr = (k: string) => new RegExp(`\\s${k}="([^"]*)"`).exec(meta)?.[1];
      const state = attr('state');
      const session = attr('session');
      const station = attr('station');
      out.push({
        name,
        uuid,
        ...(state === undefined ? {} : { state }),
        ...(session === undefined ? {} : { session }),
        ...(station === undefined ? {} : { station }),
        connected: attr('connected') !== undefined,
      });
    } catch {
      // Undefined between the list and the read: gone.
    }
  }
  return out;
}

/**
 * Polls libvirt all along a test and remembers every state each domain (by
 * UUID: a fresh clone is a new domain) was seen in. A domain that was ever
 * handed out, or dirty, must never be seen clean again.
 */
export class ReuseWatch {
  readonly #seen = new Map<string, { name: string; states: string[]; sessions: Set<string> }>();
  readonly violations: string[] = [];
  /** Sessions seen connected: each must end up in the session log. */
  readonly connectedSessions = new Set<string>();
  #stopped = false;
  readonly #loop: Promise<void>;

  constructor(prefix: string, everyMs = 300) {
    this.#loop = (async () => {
      while (!this.#stopped) {
        await this.sample(prefix).catch(() => undefined);
        await new Promise((r) => setTimeout(r, everyMs));
      }
    })();
  }

  async sample(prefix: string): Promise<DomainView[]> {
    const now = await domains(prefix);
    for (const d of now) {
      let h = this.#seen.get(d.uuid);
      if (!h) this.#seen.set(d.uuid, (h = { name: d.name, states: [], sessions: new Set() }));
      if (d.session !== undefined) h.sessions.add(d.session);
      if (d.session !== undefined && d.connected) this.connectedSessions.add(d.session);
      const state = d.state ?? 'none';
      if (h.states[h.states.length - 1] !== state) h.states.push(state);
      const used = h.states.some((s) => s === 'in-use' || s === 'dirty') || h.sessions.size > 0;
      if (state === 'clean' && used) {
        const v = `${d.name} (${d.uuid}) was ${h.states.join(' → ')}: clean again after it was handed out or dirty`;
        if (!this.violations.includes(v)) this.violations.push(v);
      }
    }
    return now;
  }

  history(uuid: string): readonly string[] {
    return this.#seen.get(uuid)?.states ?? [];
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }
}

/**
 * What is left once the pool has settled: each domain has its overlay, no
 * file belongs to no domain, nothing half-written. Returns the problems.
 */
export async function leaks(prefix: string, storageDir: string): Promise<string[]> {
  const problems: string[] = [];
  const doms = await domains(prefix);
  const names = new Set(doms.map((d) => d.name));
  const files = await readdir(storageDir).catch(() => [] as string[]);
  for (const f of files) {
    const owner = /^(.*?)\.(qcow2|qcow2\.tmp|console\.log)$/.exec(f)?.[1];
    if (f.endsWith('.tmp')) problems.push(`half-written file ${f}`);
    else if (owner === undefined || !names.has(owner)) problems.push(`file ${f} belongs to no domain`);
  }
  for (const d of doms) if (!files.includes(`${d.name}.qcow2`)) problems.push(`${d.name} has no overlay`);
  return problems;
}

/** The DNAT forwards in the test table's forwards chain, as "station>port". */
export async function forwards(table: string): Promise<string[]> {
  const { stdout } = await run('nft', ['list', 'chain', 'inet', table, 'forwards']).catch(() => ({ stdout: '' }));
  return stdout
    .split('\n')
    .filter((l) => l.includes('dnat'))
    .map((l) => `${/saddr (\S+)/.exec(l)?.[1] ?? '?'}>${/:(\d+)\s*$/.exec(l.trim())?.[1] ?? '?'}`);
}

/** Session ids in a session log file, with how often each appears. */
export async function loggedSessions(file: string): Promise<Map<string, number>> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    try {
      const id = (JSON.parse(line) as { session?: string }).session;
      if (id !== undefined) out.set(id, (out.get(id) ?? 0) + 1);
    } catch {
      // A torn line is the log's own business (it skips them).
    }
  }
  return out;
}

export function sessionLogFile(stateDir: string): string {
  return join(stateDir, 'sessions', 'sessions.jsonl');
}
