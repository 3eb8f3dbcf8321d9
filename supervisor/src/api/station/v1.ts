import type { Dispatcher, Handoff } from '../../app/dispatcher.js';
import type { SessionEnded, SupervisorStatus } from '../../app/reconciler.js';
import { asTabulaError } from '../../domain/errors.js';
import type { SessionEndCause } from '../../domain/steps.js';
import type { Disposable } from '../../ports/disposable.js';
import type { Logger } from '../../ports/logger.js';
import type { StationConnection } from '../../ports/station-listener.js';
import { stationError } from './errors.js';

/** Everything the v1 conversation needs from the rest of the supervisor. */
export interface V1Deps {
  readonly dispatcher: Dispatcher;
  readonly logger: Logger;
  readonly status: () => SupervisorStatus;
  readonly onSessionEnded: (listener: (e: SessionEnded) => void) => Disposable;
  /** The address and port stations open their console on. */
  readonly spice: { readonly host: string; readonly port: number };
  readonly defaultPool: string | undefined;
  readonly pingEveryMs: number;
  /** A station silent this long is gone. */
  readonly silenceLimitMs: number;
}

const NAME = /^[A-Za-z0-9._-]{1,32}$/;

/** `WORD key=value …` → word and fields; undefined for a malformed line. */
export function parseMessage(line: string): { word: string; fields: Record<string, string> } | undefined {
  const [word, ...rest] = line.trim().split(' ').filter(Boolean);
  if (word === undefined || !/^[A-Z]+$/.test(word)) return undefined;
  const fields: Record<string, string> = {};
  for (const part of rest) {
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    fields[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return { word, fields };
}

/** Serves a v1 station from its HELLO (the first line, already read) to the end of its session. */
export async function serveV1(conn: StationConnection, hello: string, deps: V1Deps): Promise<void> {
  const fail = (code: number, reason: string, detail = '') => {
    conn.write(`ERR ${code} ${reason}${detail ? ` ${detail}` : ''}`);
    conn.close();
  };
  const h = parseMessage(hello.replace(/^TABULA\/1\s*/, ''));
  const name = h?.fields['station'];
  if (h?.word !== 'HELLO' || name === undefined || !NAME.test(name)) return fail(400, 'bad-request', 'expected TABULA/1 HELLO station=<name>');
  const log = { station: conn.remoteAddress, name };
  const pools = deps.status().pools.map((p) => `${p.name}:${p.counts.clean}/${p.size}`).join(',');
  conn.write(`WELCOME version=1 pools=${pools}${deps.defaultPool ? ` default=${deps.defaultPool}` : ''}`);

  const request = await conn.nextLine(deps.silenceLimitMs);
  if (request === 'closed' || request === 'timeout') return conn.close();
  const r = parseMessage(request);
  if (r?.word !== 'REQUEST') return fail(400, 'bad-request', 'expected REQUEST [pool=<name>]');
  const pool = r.fields['pool'] ?? deps.defaultPool;
  if (pool === undefined || !deps.status().pools.some((p) => p.name === pool)) return fail(404, 'no-such-pool', pool ?? '');

  let handoff: Handoff;
  try {
    handoff = await deps.dispatcher.request({
      station: conn.remoteAddress,
      protocol: 'v1',
      pool,
      signal: conn.closed,
      onQueued: (position) => conn.write(`QUEUED position=${position}`),
    });
  } catch (e) {
    const err = asTabulaError(e);
    if (conn.closed.aborted) return;
    deps.logger.warning('station-not-served', { ...log, code: err.code, error: err.message });
    conn.write(stationError(err.code));
    return conn.close();
  }
  const ticket = handoff.ticket === undefined ? '' : ` ticket=${handoff.ticket}`;
  conn.write(`READY session=${handoff.session} vm=${handoff.vm} host=${deps.spice.host} port=${deps.spice.port}${ticket} expires=${Math.round(handoff.expiresMs / 1000)}`);

  // From here on the connection is the session's control channel.
  let ended: SessionEndCause | undefined;
  let signalEnded: () => void = () => undefined;
  const endedByServer = new Promise<void>((resolve) => (signalEnded = resolve));
  const subscription = deps.onSessionEnded((e) => {
    if (e.session !== handoff.session) return;
    ended = e.cause;
    signalEnded();
  });
  try {
    void handoff.connected.then((ok) => {
      if (ok) conn.write(`CONNECTED session=${handoff.session}`);
      else if (ended === undefined) {
        ended = 'not-connected';
        signalEnded();
      }
    });
    let lastHeard = Date.now();
    let pending = conn.nextLine(deps.pingEveryMs);
    for (;;) {
      const next = await Promise.race([pending, endedByServer.then(() => 'ended' as const)]);
      if (next === 'ended') break;
      if (next === 'closed') {
        ended = 'station';
        break;
      }
      if (next === 'timeout') {
        if (Date.now() - lastHeard >= deps.silenceLimitMs) {
          ended = 'station';
          deps.logger.warning('station-silent', { ...log, session: handoff.session });
          break;
        }
        conn.write('PING');
      } else {
        lastHeard = Date.now();
        const m = parseMessage(next);
        if (m?.word === 'PING') conn.write('PONG');
        else if (m?.word === 'END') {
          ended = 'station';
          break;
        } else if (m?.word !== 'PONG') {
          // A glitch on the kiosk must not cost the visitor the session: answer, carry on.
          conn.write(m?.word === 'REQUEST' ? 'ERR 409 wrong-state a session is under way' : 'ERR 400 bad-request');
        }
      }
      pending = conn.nextLine(deps.pingEveryMs);
    }
    // The station ended it (END, gone, silent): its VM is used, so it is recycled.
    if (ended === 'station') await deps.dispatcher.endSession(handoff.session);
    conn.write(`ENDED session=${handoff.session} reason=${ended ?? 'error'}`);
    deps.logger.notice('station-told-session-ended', { ...log, session: handoff.session, reason: ended ?? 'error' });
  } finally {
    subscription.dispose();
    conn.close();
  }
}
