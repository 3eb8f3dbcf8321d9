import dbus from 'dbus-next';
import { TabulaError } from '../../domain/errors.js';
import type { Bus } from './call.js';

/**
 * Connects to the system bus and waits until the bus has said hello. dbus-next
 * otherwise reports a missing bus only as an 'error' event, while every call
 * waits forever.
 */
export function connectSystemBus(timeoutMs = 10_000): Promise<Bus> {
  const bus = dbus.systemBus();
  return new Promise((resolve, reject) => {
    const done = (error?: TabulaError) => {
      clearTimeout(timer);
      bus.off('connect', onConnect);
      bus.off('error', onError);
      if (error === undefined) return resolve(bus);
      try {
        bus.disconnect();
      } catch {
        // Already gone: nothing to close.
      }
      reject(error);
    };
    const onConnect = () => done();
    const onError = (e: Error) => done(new TabulaError('bus-unavailable', `cannot connect to the system bus: ${e.message}`, { cause: e, retryable: true }));
    const timer = setTimeout(() => done(new TabulaError('bus-unavailable', `the system bus did not answer within ${timeoutMs} ms`, { retryable: true })), timeoutMs);
    bus.on('connect', onConnect);
    bus.on('error', onError);
  });
}
