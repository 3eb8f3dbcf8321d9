import dbus from 'dbus-next';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO, run } from './env.js';

export const SUPERVISOR_BUS_NAME = 'org.tabula.Supervisor1';

export interface HeardSignal {
  readonly path: string;
  readonly iface: string;
  readonly member: string;
  readonly body: unknown[];
  readonly at: number;
}

export interface CallResult {
  readonly body?: unknown[];
  /** The D-Bus error name when the call was refused. */
  readonly error?: string;
  readonly text?: string;
}

/**
 * A client of the supervisor on the system bus, as a script would be: raw
 * method calls (to see error names) and every signal the supervisor sends.
 */
export class SupervisorBus {
  readonly signals: HeardSignal[] = [];
  readonly #bus: dbus.MessageBus;

  private constructor(bus: dbus.MessageBus) {
    this.#bus = bus;
    bus.on('message', (msg: dbus.Message) => {
      if (msg.type !== dbus.MessageType.SIGNAL || !msg.path?.startsWith('/org/tabula/Supervisor1')) return;
      this.signals.push({ path: msg.path, iface: msg.interface ?? '', member: msg.member ?? '', body: msg.body as unknown[], at: Date.now() });
    });
  }

  static async open(): Promise<SupervisorBus> {
    const bus = dbus.systemBus();
    bus.on('error', () => undefined);
    const client = new SupervisorBus(bus);
    await client.#raw('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'AddMatch', 's', [`type='signal',sender='${SUPERVISOR_BUS_NAME}'`]);
    return client;
  }

  async #raw(destination: string, path: string, iface: string, member: string, signature = '', body: unknown[] = []): Promise<CallResult> {
    try {
      const reply = await this.#bus.call(new dbus.Message({ destination, path, interface: iface, member, ...(signature ? { signature, body } : {}) }));
      return { body: (reply?.body ?? []) as unknown[] };
    } catch (e) {
      const err = e as { type?: string; text?: string };
      return { error: err.type ?? 'unknown', text: err.text ?? String(e) };
    }
  }

  call(path: string, iface: string, member: string, signature = '', body: unknown[] = []): Promise<CallResult> {
    return this.#raw(SUPERVISOR_BUS_NAME, path, iface, member, signature, body);
  }

  async props(path: string, iface: string): Promise<Record<string, unknown>> {
    const r = await this.call(path, 'org.freedesktop.DBus.Properties', 'GetAll', 's', [iface]);
    if (r.error) throw new Error(`GetAll ${path}: ${r.error}: ${r.text}`);
    const all = r.body?.[0] as Record<string, dbus.Variant>;
    return Object.fromEntries(Object.entries(all).map(([k, v]) => [k, v.value]));
  }

  /** Signals heard since `from` (an index into `signals`) with that member. */
  heard(member: string, from = 0): HeardSignal[] {
    return this.signals.slice(from).filter((s) => s.member === member);
  }

  close(): void {
    this.#bus.disconnect();
  }
}

/** "iface member kind signature" for every member of the org.tabula interfaces in an introspection XML. */
export function contractMembers(xml: string): string[] {
  const out: string[] = [];
  const types = (body: string | undefined) =>
    [...(body ?? '').matchAll(/<arg\b([^>]*)>/g)].map((a) => {
      const attr = (n: string) => new RegExp(`${n}="([^"]*)"`).exec(a[1] ?? '')?.[1] ?? '';
      return `${attr('direction') || 'in'}:${attr('type')}`;
    });
  for (const iface of xml.matchAll(/<interface name="(org\.tabula[^"]*)">([\s\S]*?)<\/interface>/g)) {
    const [, name, body] = iface as unknown as [string, string, string];
    for (const p of body.matchAll(/<property name="(\w+)" type="([^"]+)" access="(\w+)"/g)) out.push(`${name} property ${p[1]} ${p[2]} ${p[3]}`);
    for (const m of body.matchAll(/<method name="(\w+)"\s*(?:\/>|>([\s\S]*?)<\/method>)/g)) out.push(`${name} method ${m[1]} (${types(m[2]).join(',')})`);
    for (const s of body.matchAll(/<signal name="(\w+)"\s*(?:\/>|>([\s\S]*?)<\/signal>)/g)) out.push(`${name} signal ${s[1]} (${types(s[2]).join(',')})`);
  }
  return out.sort();
}

export async function documentedMembers(): Promise<string[]> {
  return contractMembers(await readFile(join(REPO, 'docs/dbus/org.tabula.Supervisor1.xml'), 'utf8'));
}

/** The live introspection of one object of the supervisor's. */
export async function introspect(path: string): Promise<string> {
  const { stdout } = await run('busctl', ['--system', '--xml-interface', 'introspect', SUPERVISOR_BUS_NAME, path]);
  return stdout;
}
