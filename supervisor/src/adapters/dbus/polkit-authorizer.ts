import dbus from 'dbus-next';
import { asTabulaError, TabulaError } from '../../domain/errors.js';
import type { AdminAction, Authorizer } from '../../ports/authorizer.js';
import { call, type Bus } from './call.js';

const BUS_TIMEOUT_MS = 5_000;
/** polkit may ask an authentication agent, which waits for a person. */
const POLKIT_TIMEOUT_MS = 25_000;
const ALLOW_USER_INTERACTION = 1;

/** The polkit action id of an admin action (appliance/polkit/org.tabula.supervisor1.policy). */
export const polkitAction = (action: AdminAction): string => `org.tabula.supervisor1.${action}`;

/**
 * root may do anything; anyone else is asked of polkit
 * (org.freedesktop.PolicyKit1.Authority.CheckAuthorization, subject: the
 * caller's bus name). Without a reachable polkit, only root.
 */
export class PolkitAuthorizer implements Authorizer {
  readonly #bus: () => Bus;

  constructor(bus: () => Bus) {
    this.#bus = bus;
  }

  async authorize(caller: string, action: AdminAction): Promise<void> {
    if (caller === '') throw new TabulaError('access-denied', 'the caller is unknown');
    const bus = this.#bus();
    const [uid] = (await call(
      bus,
      { destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'GetConnectionUnixUser', signature: 's', body: [caller] },
      BUS_TIMEOUT_MS,
      () => 'access-denied',
    )) as [number];
    if (uid === 0) return;
    const id = polkitAction(action);
    let reply: unknown[];
    try {
      reply = await call(
        bus,
        {
          destination: 'org.freedesktop.PolicyKit1',
          path: '/org/freedesktop/PolicyKit1/Authority',
          interface: 'org.freedesktop.PolicyKit1.Authority',
          member: 'CheckAuthorization',
          signature: '(sa{sv})sa{ss}us',
          body: [['system-bus-name', { name: new dbus.Variant('s', caller) }], id, {}, ALLOW_USER_INTERACTION, ''],
        },
        POLKIT_TIMEOUT_MS,
        () => 'bus-unavailable',
      );
    } catch (e) {
      throw new TabulaError('access-denied', `uid ${uid} may not do this: only root may, since polkit cannot be asked (${asTabulaError(e).message})`, { cause: e });
    }
    const [authorized, challenge] = (reply[0] ?? []) as [boolean?, boolean?];
    if (authorized === true) return;
    const why = challenge === true ? ' (an administrator must authenticate, and no authentication agent answered)' : '';
    throw new TabulaError('access-denied', `uid ${uid} is not authorized for ${id} by polkit${why}`);
  }
}
