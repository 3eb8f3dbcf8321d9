import type dbus from 'dbus-next';
import { TabulaError, type ErrorCode } from '../domain/errors.js';
import type { DomainSnapshot, VmRecord } from '../domain/vm.js';
import { parseDomainXml } from '../render/parse-domain.js';
import { METADATA_NS, METADATA_PREFIX, renderVmRecord } from '../render/vm-metadata.js';
import type { Disposable } from '../ports/disposable.js';
import type { ConsoleTicket, DomainEventHint, GraphicsEvent, Libvirt } from '../ports/libvirt.js';
import { esc } from '../render/xml.js';
import { addMatch, call, type Bus } from './dbus/call.js';

const DEST = 'org.libvirt';
const CONNECT_IFACE = 'org.libvirt.Connect';
const DOMAIN_IFACE = 'org.libvirt.Domain';

// libvirt flag values (libvirt-domain.h).
const AFFECT_LIVE = 1;
const AFFECT_CONFIG = 2;
const METADATA_ELEMENT = 2;
const UNDEFINE_NVRAM = 4;

// virDomainEventGraphicsPhase
const GRAPHICS_PHASES = ['connect', 'initialize', 'disconnect'] as const;
const DOMAIN_EVENTS = ['defined', 'undefined', 'started', 'suspended', 'resumed', 'stopped', 'shutdown', 'pmsuspended', 'crashed'];

export interface LibvirtDbusOptions {
  /** The connection's object path: /org/libvirt/QEMU for qemu:///system, /org/libvirt/Test for the test driver. */
  readonly connectPath?: string;
  readonly timeoutMs?: number;
  /** Starting a guest can take a while on a loaded host. */
  readonly slowTimeoutMs?: number;
}

/** libvirt through libvirt-dbus on the system bus. */
export class LibvirtDbus implements Libvirt {
  /** The connection in use now: a bus that went away is replaced (see attach). */
  readonly #busNow: () => Bus;
  readonly #path: string;
  readonly #timeout: number;
  readonly #slowTimeout: number;
  readonly #listeners = new Set<(hint: DomainEventHint) => void>();
  readonly #graphicsListeners = new Set<(event: GraphicsEvent) => void>();
  /** Domain object path → name, learnt while listing; signals carry only the path. */
  readonly #names = new Map<string, string>();
  #matched = false;

  /** `bus`: a connection, or a function giving the current one (then call attach on each new one). */
  constructor(bus: Bus | (() => Bus), options: LibvirtDbusOptions = {}) {
    this.#busNow = typeof bus === 'function' ? bus : () => bus;
    this.#path = options.connectPath ?? '/org/libvirt/QEMU';
    this.#timeout = options.timeoutMs ?? 15_000;
    this.#slowTimeout = options.slowTimeoutMs ?? 60_000;
    if (typeof bus !== 'function') this.#listen(bus);
  }

  /** A new connection (the bus was restarted): listen on it and add the match rules again. */
  async attach(bus: Bus): Promise<void> {
    this.#listen(bus);
    this.#matched = false;
    if (this.#listeners.size > 0 || this.#graphicsListeners.size > 0) await this.#addMatches(bus);
  }

  #listen(bus: Bus): void {
    bus.on('message', (msg: dbus.Message) => this.#dispatch(msg));
  }

  async listDomains(): Promise<DomainSnapshot[]> {
    const [paths] = (await this.#connect('ListDomains', 'u', [0])) as [string[]];
    const xmls = await Promise.all(
      paths.map((p) =>
        this.#domainCall(p, 'GetXMLDesc', 'u', [0]).then(
          ([xml]) => xml as string,
          // A domain undefined between the list and the read is simply gone.
          (e: TabulaError) => (e.code === 'not-found' ? undefined : Promise.reject(e)),
        ),
      ),
    );
    const domains: DomainSnapshot[] = [];
    xmls.forEach((xml, i) => {
      if (xml === undefined) return;
      const d = parseDomainXml(xml);
      this.#names.set(paths[i] as string, d.name);
      domains.push(d);
    });
    return domains;
  }

  async getDomain(name: string): Promise<DomainSnapshot | undefined> {
    const path = await this.#lookupOptional(name);
    if (path === undefined) return undefined;
    try {
      const [xml] = (await this.#domainCall(path, 'GetXMLDesc', 'u', [0])) as [string];
      return parseDomainXml(xml);
    } catch (e) {
      if (e instanceof TabulaError && e.code === 'not-found') return undefined;
      throw e;
    }
  }

  async defineDomain(xml: string): Promise<void> {
    await this.#connect('DomainDefineXML', 's', [xml]);
  }

  async startDomain(name: string): Promise<void> {
    await this.#domainCall(await this.#lookup(name), 'Create', 'u', [0], this.#slowTimeout);
  }

  async destroyDomain(name: string): Promise<void> {
    const path = await this.#lookupOptional(name);
    if (path === undefined) return;
    try {
      await this.#domainCall(path, 'Destroy', 'u', [0], this.#slowTimeout);
    } catch (e) {
      if (!(e instanceof TabulaError && e.code === 'invalid-argument' && /not running/i.test(e.message))) throw e;
    }
  }

  async undefineDomain(name: string): Promise<void> {
    const path = await this.#lookupOptional(name);
    if (path === undefined) return;
    await this.#domainCall(path, 'Undefine', 'u', [UNDEFINE_NVRAM]);
  }

  async setVmRecord(name: string, record: VmRecord): Promise<void> {
    const path = await this.#lookup(name);
    const [xml] = (await this.#domainCall(path, 'GetXMLDesc', 'u', [0])) as [string];
    const flags = parseDomainXml(xml).active ? AFFECT_LIVE | AFFECT_CONFIG : AFFECT_CONFIG;
    await this.#domainCall(path, 'SetMetadata', 'isssu', [
      METADATA_ELEMENT,
      renderVmRecord(record, false),
      METADATA_PREFIX,
      METADATA_NS,
      flags,
    ]);
  }

  async setConsoleTicket(name: string, t: ConsoleTicket): Promise<void> {
    // passwdValidTo is UTC without a zone suffix; connected='keep' leaves a client that is on alone.
    const validTo = t.validUntil === undefined ? '' : ` passwdValidTo='${new Date(t.validUntil).toISOString().slice(0, 19)}'`;
    const xml =
      `<graphics type='spice' port='${t.port}' autoport='no' passwd='${esc(t.password)}'${validTo} connected='keep'>` +
      `<listen type='address' address='${esc(t.listen)}'/></graphics>`;
    await this.#domainCall(await this.#lookup(name), 'UpdateDevice', 'su', [xml, AFFECT_LIVE]);
  }

  onDomainEvent(listener: (hint: DomainEventHint) => void): Disposable {
    this.#listeners.add(listener);
    this.#subscribe();
    return { dispose: () => this.#listeners.delete(listener) };
  }

  onGraphicsEvent(listener: (event: GraphicsEvent) => void): Disposable {
    this.#graphicsListeners.add(listener);
    this.#subscribe();
    return { dispose: () => this.#graphicsListeners.delete(listener) };
  }

  #subscribe(): void {
    if (this.#matched) return;
    let bus: Bus;
    try {
      bus = this.#busNow();
    } catch {
      // No bus now: attach adds the rules once it is back.
      return;
    }
    this.#addMatches(bus).catch(() => undefined);
  }

  async #addMatches(bus: Bus): Promise<void> {
    this.#matched = true;
    // One rule per signal type for all domains: dbus-next never removes per-proxy rules.
    const rules = [
      `type='signal',sender='${DEST}',interface='${CONNECT_IFACE}',member='DomainEvent',path='${this.#path}'`,
      `type='signal',sender='${DEST}',interface='${DOMAIN_IFACE}',member='AgentEvent',path_namespace='${this.#path}'`,
      `type='signal',sender='${DEST}',interface='${DOMAIN_IFACE}',member='Graphics',path_namespace='${this.#path}'`,
    ];
    try {
      await Promise.all(rules.map((r) => addMatch(bus, r, this.#timeout)));
    } catch (e) {
      this.#matched = false;
      throw e;
    }
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }

  #dispatch(msg: dbus.Message): void {
    let hint: DomainEventHint;
    if (msg.interface === CONNECT_IFACE && msg.member === 'DomainEvent' && msg.path === this.#path) {
      const [domain, event] = msg.body as [string, number, number];
      hint = { domain, event: DOMAIN_EVENTS[event] ?? String(event) };
    } else if (msg.interface === DOMAIN_IFACE && msg.member === 'Graphics' && msg.path?.startsWith(`${this.#path}/`)) {
      this.#dispatchGraphics(msg.path, msg.body as [number, [number, string, string], [number, string, string]]);
      return;
    } else if (msg.interface === DOMAIN_IFACE && msg.member === 'AgentEvent' && msg.path?.startsWith(`${this.#path}/`)) {
      const [state] = msg.body as [number, number];
      hint = { domain: msg.path, event: state === 1 ? 'agent-connected' : 'agent-disconnected' };
    } else {
      return;
    }
    for (const l of this.#listeners) l(hint);
  }

  #dispatchGraphics(path: string, [phase, , remote]: [number, [number, string, string], [number, string, string]]): void {
    const domain = this.#names.get(path);
    const kind = GRAPHICS_PHASES[phase];
    if (domain === undefined || kind === undefined) return;
    const event: GraphicsEvent = { domain, phase: kind, remoteAddress: remote[1] };
    for (const l of this.#graphicsListeners) l(event);
  }

  async #lookup(name: string): Promise<string> {
    const path = await this.#lookupOptional(name);
    if (path === undefined) throw new TabulaError('not-found', `libvirt has no domain named ${name}`);
    return path;
  }

  async #lookupOptional(name: string): Promise<string | undefined> {
    try {
      const [path] = (await this.#connect('DomainLookupByName', 's', [name])) as [string];
      this.#names.set(path, name);
      return path;
    } catch (e) {
      if (e instanceof TabulaError && e.code === 'not-found') return undefined;
      throw e;
    }
  }

  #connect(member: string, signature: string, body: unknown[]): Promise<unknown[]> {
    return call(this.#busNow(), { destination: DEST, path: this.#path, interface: CONNECT_IFACE, member, signature, body }, this.#timeout, translate);
  }

  #domainCall(path: string, member: string, signature: string, body: unknown[], timeoutMs = this.#timeout): Promise<unknown[]> {
    return call(this.#busNow(), { destination: DEST, path, interface: DOMAIN_IFACE, member, signature, body }, timeoutMs, translate);
  }
}

/** libvirt-dbus reports every libvirt error as org.libvirt.Error; the text says which. */
function translate(name: string, text: string): ErrorCode {
  if (name === 'org.freedesktop.DBus.Error.ServiceUnknown' || name === 'org.freedesktop.DBus.Error.NoReply') return 'libvirt-unavailable';
  if (name === 'org.freedesktop.DBus.Error.UnknownObject') return 'not-found';
  if (/Domain not found|no domain with matching/i.test(text)) return 'not-found';
  if (/Requested operation is not valid|operation invalid/i.test(text)) return 'invalid-argument';
  if (/Cannot recv data|Broken pipe|unable to connect|Connection reset/i.test(text)) return 'libvirt-unavailable';
  return 'libvirt-failed';
}
