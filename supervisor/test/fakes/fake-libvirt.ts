import { TabulaError } from '../../src/domain/errors.js';
import type { DomainSnapshot, VmRecord } from '../../src/domain/vm.js';
import type { Disposable } from '../../src/ports/disposable.js';
import type { DomainEventHint, Libvirt, GraphicsEvent, ConsoleTicket } from '../../src/ports/libvirt.js';
import { parseDomainXml } from '../../src/render/parse-domain.js';

export interface FakeDomain {
  readonly name: string;
  readonly uuid: string;
  active: boolean;
  agentConnected: boolean;
  /** False once undefined while running: libvirt keeps it as a transient domain until it stops. */
  persistent: boolean;
  spicePort?: number;
  record?: VmRecord;
  /** The XML it was last defined with, so tests can look at what the supervisor rendered. */
  xml: string;
}

type LibvirtMethod = Exclude<keyof Libvirt, 'onDomainEvent' | 'onGraphicsEvent'>;

/**
 * libvirt in memory, with the semantics the port documents: destroy and
 * undefine are idempotent, everything else on a missing domain is not-found.
 */
export class FakeLibvirt implements Libvirt {
  readonly #graphicsListeners = new Set<(event: GraphicsEvent) => void>();
  /** While true, every call fails the way an unreachable libvirtd does. */
  unreachable = false;
  readonly calls: { method: LibvirtMethod; name?: string }[] = [];
  readonly #domains = new Map<string, FakeDomain>();
  readonly #failures = new Map<LibvirtMethod, Error[]>();
  readonly #listeners = new Set<(hint: DomainEventHint) => void>();
  #uuids = 0;

  async listDomains(): Promise<DomainSnapshot[]> {
    this.#enter('listDomains');
    return [...this.#domains.values()].map(snapshot);
  }

  async getDomain(name: string): Promise<DomainSnapshot | undefined> {
    this.#enter('getDomain', name);
    const d = this.#domains.get(name);
    return d === undefined ? undefined : snapshot(d);
  }

  async defineDomain(xml: string): Promise<void> {
    const parsed = parseDomainXml(xml);
    this.#enter('defineDomain', parsed.name);
    if (parsed.name === '') throw new TabulaError('libvirt-failed', 'XML error: missing domain name');
    const existing = this.#domains.get(parsed.name);
    const domain: FakeDomain = {
      name: parsed.name,
      uuid: existing?.uuid ?? this.#newUuid(),
      active: existing?.active ?? false,
      agentConnected: existing?.agentConnected ?? false,
      persistent: true,
      xml,
      ...(parsed.spicePort === undefined ? {} : { spicePort: parsed.spicePort }),
      ...(parsed.record === undefined ? {} : { record: parsed.record }),
    };
    this.#domains.set(domain.name, domain);
    this.#emit(domain.name, 'defined');
  }

  async startDomain(name: string): Promise<void> {
    this.#enter('startDomain', name);
    const d = this.#require(name);
    if (d.active) throw new TabulaError('invalid-argument', `Requested operation is not valid: domain ${name} is already running`);
    d.active = true;
    d.agentConnected = false;
    this.#emit(name, 'started');
  }

  async destroyDomain(name: string): Promise<void> {
    this.#enter('destroyDomain', name);
    const d = this.#domains.get(name);
    if (d === undefined || !d.active) return;
    this.#stop(d, 'stopped');
  }

  async undefineDomain(name: string): Promise<void> {
    this.#enter('undefineDomain', name);
    const d = this.#domains.get(name);
    if (d === undefined) return;
    if (d.active) d.persistent = false;
    else this.#domains.delete(name);
    this.#emit(name, 'undefined');
  }

  async setVmRecord(name: string, record: VmRecord): Promise<void> {
    this.#enter('setVmRecord', name);
    this.#require(name).record = record;
  }

  onDomainEvent(listener: (hint: DomainEventHint) => void): Disposable {
    this.#listeners.add(listener);
    return { dispose: () => this.#listeners.delete(listener) };
  }

  /** Console tickets set, newest last, per domain. */
  readonly tickets = new Map<string, ConsoleTicket[]>();

  async setConsoleTicket(name: string, ticket: ConsoleTicket): Promise<void> {
    this.#enter('setConsoleTicket', name);
    const d = this.#require(name);
    if (!d.active) throw new TabulaError('invalid-argument', `Requested operation is not valid: domain ${name} is not running`);
    this.tickets.set(name, [...(this.tickets.get(name) ?? []), ticket]);
  }

  onGraphicsEvent(listener: (event: GraphicsEvent) => void): Disposable {
    this.#graphicsListeners.add(listener);
    return { dispose: () => this.#graphicsListeners.delete(listener) };
  }

  /** A Spice client's channel on a console changed, as libvirt would signal it. */
  graphics(event: GraphicsEvent): void {
    for (const l of this.#graphicsListeners) l(event);
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    this.#graphicsListeners.clear();
  }

  // ---- test controls ----

  /** The guest opened its agent channel. */
  guestUp(name: string): void {
    const d = this.#require(name);
    if (!d.active) throw new Error(`guestUp(${name}): domain is not running`);
    d.agentConnected = true;
    this.#emit(name, 'agent-connected');
  }

  /** The domain stops behind the supervisor's back (guest power-off, qemu crash, on_crash=destroy). */
  crash(name: string): void {
    const d = this.#require(name);
    if (!d.active) throw new Error(`crash(${name}): domain is not running`);
    this.#stop(d, 'crashed');
  }

  /** The next call of `method` throws `error` (queued: several calls fail in turn). */
  failNext(method: LibvirtMethod, error: Error = new TabulaError('libvirt-failed', `injected ${method} failure`)): void {
    const queue = this.#failures.get(method) ?? [];
    queue.push(error);
    this.#failures.set(method, queue);
  }

  /** A domain Tabula did not create (no metadata record). */
  addForeign(name: string, active = true): FakeDomain {
    const d: FakeDomain = { name, uuid: this.#newUuid(), active, agentConnected: false, persistent: true, xml: `<domain type='kvm'><name>${name}</name></domain>` };
    this.#domains.set(name, d);
    return d;
  }

  domain(name: string): FakeDomain | undefined {
    return this.#domains.get(name);
  }

  names(): string[] {
    return [...this.#domains.keys()].sort();
  }

  listenerCount(): number {
    return this.#listeners.size;
  }

  #enter(method: LibvirtMethod, name?: string): void {
    this.calls.push(name === undefined ? { method } : { method, name });
    if (this.unreachable) throw new TabulaError('libvirt-unavailable', 'Cannot recv data: Connection reset by peer', { retryable: true });
    const injected = this.#failures.get(method)?.shift();
    if (injected) throw injected;
  }

  #require(name: string): FakeDomain {
    const d = this.#domains.get(name);
    if (d === undefined) throw new TabulaError('not-found', `libvirt has no domain named ${name}`);
    return d;
  }

  #stop(d: FakeDomain, event: string): void {
    d.active = false;
    d.agentConnected = false;
    if (!d.persistent) this.#domains.delete(d.name);
    this.#emit(d.name, event);
  }

  #emit(domain: string, event: string): void {
    for (const l of [...this.#listeners]) l({ domain, event });
  }

  #newUuid(): string {
    this.#uuids++;
    return `00000000-0000-4000-8000-${this.#uuids.toString(16).padStart(12, '0')}`;
  }
}

function snapshot(d: FakeDomain): DomainSnapshot {
  return {
    name: d.name,
    uuid: d.uuid,
    active: d.active,
    agentConnected: d.agentConnected,
    ...(d.spicePort === undefined ? {} : { spicePort: d.spicePort }),
    ...(d.record === undefined ? {} : { record: d.record }),
  };
}
