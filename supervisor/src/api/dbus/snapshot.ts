import dbus from 'dbus-next';
import { isTabulaError } from '../../domain/errors.js';
import type { AdminAction } from '../../ports/authorizer.js';
import { errorName } from './names.js';

const { Interface, ACCESS_READ } = dbus.interface;

type Values = Record<string, unknown>;

/**
 * An exported interface whose properties are a plain snapshot. `update`
 * emits PropertiesChanged for the properties whose value really changed.
 */
export abstract class SnapshotInterface extends Interface {
  protected values: Values = {};

  update(next: Values): void {
    const changed: Values = {};
    for (const [k, v] of Object.entries(next)) if (fingerprint(v) !== fingerprint(this.values[k])) changed[k] = v;
    this.values = { ...this.values, ...next };
    if (Object.keys(changed).length > 0) Interface.emitPropertiesChanged(this, changed, []);
  }
}

function fingerprint(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));
}

export function readOnly(props: Record<string, string>): Record<string, dbus.interface.PropertyOptions> {
  return Object.fromEntries(Object.entries(props).map(([k, signature]) => [k, { signature, access: ACCESS_READ }]));
}

export function defineGetters(cls: { prototype: object }, names: string[]): void {
  for (const name of names) {
    Object.defineProperty(cls.prototype, name, {
      get(this: { values: Values }) {
        return this.values[name];
      },
    });
  }
}

/** Runs an API call, turning TabulaError into a D-Bus error with a code. */
export async function guarded<T>(action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (e) {
    if (isTabulaError(e)) throw new dbus.DBusError(errorName(e.code), e.message);
    throw new dbus.DBusError(errorName('internal'), e instanceof Error ? e.message : String(e));
  }
}

/** Who is calling, and whether they may. */
export interface Gate {
  /**
   * The sender of the method call being dispatched. Valid only when read at
   * once, before anything is awaited: dbus-next dispatches each call
   * synchronously after the bus's method handlers saw it.
   */
  caller(): string;
  authorize(caller: string, action: AdminAction): Promise<void>;
}

/**
 * A snapshot interface whose methods act through `actions`; admin methods
 * authorize their caller first (root, or polkit), then act.
 */
export abstract class ActingInterface<A> extends SnapshotInterface {
  readonly #gate: Gate;
  protected readonly actions: A;

  constructor(iface: string, actions: A, gate: Gate) {
    super(iface);
    this.actions = actions;
    this.#gate = gate;
  }

  /** Must be called at once from the method (see Gate.caller). */
  protected admin<T>(what: AdminAction, action: (actions: A) => Promise<T>): Promise<T> {
    const caller = this.#gate.caller();
    return guarded(async () => {
      await this.#gate.authorize(caller, what);
      return action(this.actions);
    });
  }
}
