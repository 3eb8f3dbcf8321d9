import dbus from 'dbus-next';
import { TabulaError, type ErrorCode } from '../../domain/errors.js';

export type Bus = dbus.MessageBus;

export interface CallSpec {
  readonly destination: string;
  readonly path: string;
  readonly interface: string;
  readonly member: string;
  readonly signature?: string;
  readonly body?: unknown[];
}

/**
 * One D-Bus method call with the signature explicit and a timeout (dbus-next
 * has none: a call to a wedged service would otherwise wait forever).
 * Foreign errors become TabulaError; `translate` may pick a more precise code.
 */
export async function call(
  bus: Bus,
  spec: CallSpec,
  timeoutMs: number,
  translate: (name: string, text: string) => ErrorCode = () => 'libvirt-failed',
): Promise<unknown[]> {
  const msg = new dbus.Message({
    destination: spec.destination,
    path: spec.path,
    interface: spec.interface,
    member: spec.member,
    ...(spec.signature ? { signature: spec.signature, body: spec.body ?? [] } : {}),
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new TabulaError('timeout', `${spec.interface}.${spec.member} on ${spec.path} did not answer within ${timeoutMs} ms`, { retryable: true })),
      timeoutMs,
    );
  });
  try {
    const reply = await Promise.race([bus.call(msg), timeout]);
    return (reply?.body ?? []) as unknown[];
  } catch (e) {
    if (e instanceof TabulaError) throw e;
    const name = (e as { type?: string }).type ?? '';
    const text = (e as { text?: string }).text ?? (e as Error).message ?? String(e);
    const code = name === '' ? 'bus-unavailable' : translate(name, text);
    throw new TabulaError(code, `${spec.interface}.${spec.member}: ${text}`, { cause: e, retryable: code === 'bus-unavailable' });
  } finally {
    clearTimeout(timer);
  }
}

/** Adds one match rule; dbus-next's own per-proxy rules are never removed again. */
export async function addMatch(bus: Bus, rule: string, timeoutMs: number): Promise<void> {
  await call(
    bus,
    { destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'AddMatch', signature: 's', body: [rule] },
    timeoutMs,
    () => 'bus-unavailable',
  );
}
