import type dbus from 'dbus-next';
import { ActingInterface, defineGetters, readOnly } from './snapshot.js';
import { TIMEOUT_PROPS, timeoutsOfDict } from './timeouts.js';

export interface PoolActions {
  drain(): Promise<void>;
  undrain(): Promise<void>;
  resize(size: number): Promise<void>;
  useImage(name: string): Promise<void>;
  rollbackImage(): Promise<void>;
  /** Some of the pool's timeouts, in seconds by their config keys. */
  setTimeouts(changes: Record<string, number>): Promise<void>;
}

const POOL_PROPS = {
  Name: 's',
  Size: 'u',
  Healthy: 'b',
  HealthReason: 's',
  Drained: 'b',
  Counts: 'a{su}',
  Vms: 'ao',
  GoldenImage: 's',
  PreviousGoldenImage: 's',
  GoldenImageConfirmed: 'b',
  ...TIMEOUT_PROPS,
};

export class PoolObject extends ActingInterface<PoolActions> {
  Drain(): Promise<void> {
    return this.admin('manage', (a) => a.drain());
  }
  Undrain(): Promise<void> {
    return this.admin('manage', (a) => a.undrain());
  }
  Resize(size: number): Promise<void> {
    return this.admin('manage', (a) => a.resize(size));
  }
  UseImage(name: string): Promise<void> {
    return this.admin('manage', (a) => a.useImage(name));
  }
  RollbackImage(): Promise<void> {
    return this.admin('manage', (a) => a.rollbackImage());
  }
  SetTimeouts(timeouts: Record<string, dbus.Variant>): Promise<void> {
    return this.admin('manage', (a) => a.setTimeouts(timeoutsOfDict(timeouts)));
  }
}
defineGetters(PoolObject, Object.keys(POOL_PROPS));
PoolObject.configureMembers({
  properties: readOnly(POOL_PROPS),
  methods: {
    Drain: { inSignature: '', outSignature: '' },
    Undrain: { inSignature: '', outSignature: '' },
    Resize: { inSignature: 'u', outSignature: '' },
    UseImage: { inSignature: 's', outSignature: '' },
    RollbackImage: { inSignature: '', outSignature: '' },
    SetTimeouts: { inSignature: 'a{sv}', outSignature: '' },
  },
});

/** What a VM's or a session's one method does: take it away. */
export interface EndAction {
  end(): Promise<void>;
}

const VM_PROPS = { Name: 's', Uuid: 's', Pool: 's', Slot: 'u', State: 's', Active: 'b', StateSince: 't', SpicePort: 'q', GoldenImage: 's' };

export class VmObject extends ActingInterface<EndAction> {
  Recycle(): Promise<void> {
    return this.admin('manage', (a) => a.end());
  }
}
defineGetters(VmObject, Object.keys(VM_PROPS));
VmObject.configureMembers({ properties: readOnly(VM_PROPS), methods: { Recycle: { inSignature: '', outSignature: '' } } });

const SESSION_PROPS = {
  Id: 's',
  Station: 's',
  StationName: 's',
  RemoteAddress: 's',
  Pool: 's',
  Vm: 's',
  Protocol: 's',
  StartedAt: 't',
  ConnectedAt: 't',
  LastActivity: 't',
};

export class SessionObject extends ActingInterface<EndAction> {
  End(): Promise<void> {
    return this.admin('manage', (a) => a.end());
  }
}
defineGetters(SessionObject, Object.keys(SESSION_PROPS));
SessionObject.configureMembers({ properties: readOnly(SESSION_PROPS), methods: { End: { inSignature: '', outSignature: '' } } });
