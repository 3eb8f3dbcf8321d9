import type { DomainSnapshot, VmRecord } from '../domain/vm.js';
import type { Disposable } from './disposable.js';

export interface DomainEventHint {
  readonly domain: string;
  readonly event: string;
}

/** A Spice client's connection to a VM console changed (one event per Spice channel). */
export interface GraphicsEvent {
  readonly domain: string;
  readonly phase: 'connect' | 'initialize' | 'disconnect';
  /** The client's address as the console sees it (the station's own, through the forward). */
  readonly remoteAddress: string;
}

/** A Spice ticket: the console's password, optionally valid only until a time. */
export interface ConsoleTicket {
  readonly port: number;
  readonly listen: string;
  readonly password: string;
  /** ms since epoch; new clients are refused after it (connected ones stay). */
  readonly validUntil?: number;
}

/**
 * The hypervisor, as Tabula needs it. Every call is idempotent where that is
 * meaningful (destroying a stopped domain or undefining a missing one is not
 * an error), so a step can be repeated after a crash.
 */
export interface Libvirt {
  listDomains(): Promise<DomainSnapshot[]>;
  /** One domain, or undefined when there is none by that name. */
  getDomain(name: string): Promise<DomainSnapshot | undefined>;
  defineDomain(xml: string): Promise<void>;
  startDomain(name: string): Promise<void>;
  destroyDomain(name: string): Promise<void>;
  undefineDomain(name: string): Promise<void>;
  /** Replaces Tabula's metadata record, in the live domain too when it runs. */
  setVmRecord(name: string, record: VmRecord): Promise<void>;
  /** Events are hints: the listener re-reads libvirt rather than patching state. */
  /** Changes a running VM's console ticket at once; connected clients stay connected. */
  setConsoleTicket(name: string, ticket: ConsoleTicket): Promise<void>;
  onDomainEvent(listener: (hint: DomainEventHint) => void): Disposable;
  onGraphicsEvent(listener: (event: GraphicsEvent) => void): Disposable;
  close(): Promise<void>;
}
