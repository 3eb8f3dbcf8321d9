import { asTabulaError } from '../../domain/errors.js';
import type { StationConnection } from '../../ports/station-listener.js';
import { stationError } from './errors.js';
import { serveV1, type V1Deps } from './v1.js';

/** The line the seed's stations wait for before starting their Spice viewer. */
export const V0_CONNECT_NOW = 'RULE ADDED, CONNECT NOW';
/** A v0 station says nothing; a newer one says hello at once. */
const V0_SILENCE_MS = 100;
/** A station that started a line gets this long to finish it. */
const LINE_TIMEOUT_MS = 5_000;

export interface ProtocolDeps extends V1Deps {
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Serves one station connection on the signal port. */
export async function serveStation(conn: StationConnection, deps: ProtocolDeps): Promise<void> {
  let first = await conn.nextLine(V0_SILENCE_MS);
  // Only silence means v0: a station that has started to speak is waited for.
  if (first === 'timeout' && conn.pendingBytes > 0) first = await conn.nextLine(LINE_TIMEOUT_MS);
  if (first === 'closed') return;
  if (first === 'timeout' && conn.pendingBytes > 0) {
    deps.logger.warning('station-too-slow', { station: conn.remoteAddress });
    conn.write('ERR 408 request-timeout');
    return conn.close();
  }
  if (first === 'timeout') return serveV0(conn, deps);
  const version = /^TABULA\/(\S+)/.exec(first)?.[1];
  if (version === '1') return serveV1(conn, first, deps);
  if (version === undefined) {
    deps.logger.warning('station-bad-request', { station: conn.remoteAddress, line: first.slice(0, 80) });
    conn.write('ERR 400 bad-request expected TABULA/<version> or nothing');
  } else {
    deps.logger.warning('station-bad-version', { station: conn.remoteAddress, version: version.slice(0, 16) });
    conn.write(`ERR 505 unsupported-version ${version.slice(0, 16)} (this server speaks v0 and v1)`);
  }
  conn.close();
}

/**
 * v0, the seed's protocol: the station connects and says nothing; once its
 * forward is open the server repeats "RULE ADDED, CONNECT NOW" every second
 * until the station's Spice client is on the console or the wait runs out.
 * While no VM is clean the station simply waits.
 */
async function serveV0(conn: StationConnection, deps: ProtocolDeps): Promise<void> {
  let handoff;
  try {
    handoff = await deps.dispatcher.request({ station: conn.remoteAddress, protocol: 'v0', signal: conn.closed });
  } catch (e) {
    const err = asTabulaError(e);
    if (conn.closed.aborted) return;
    deps.logger.warning('station-not-served', { station: conn.remoteAddress, code: err.code, error: err.message });
    deps.metrics?.failed(err.code, 'station-v0');
    conn.write(stationError(err.code));
    return;
  }
  let settled = false;
  void handoff.connected.then(() => (settled = true));
  while (!settled && !conn.closed.aborted) {
    conn.write(V0_CONNECT_NOW);
    await Promise.race([handoff.connected, deps.sleep(1000, conn.closed)]);
  }
  conn.close();
}
