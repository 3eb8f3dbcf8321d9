import type { SessionActivity } from '../../app/activity.js';
import type { Dispatcher } from '../../app/dispatcher.js';
import type { MetricsSink } from '../../app/supervisor-metrics.js';
import type { SessionEnded, SupervisorStatus } from '../../app/reconciler.js';
import { asTabulaError } from '../../domain/errors.js';
import { sessionDeadline, warnAt, type SessionDeadline, type SessionLimits } from '../../domain/session-limits.js';
import type { SessionEndCause } from '../../domain/steps.js';
import type { SessionRecord } from '../../domain/vm.js';
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
  /** Input reports (INPUT) land here; the reconciler judges idleness from it. */
  readonly activity: SessionActivity;
  readonly limitsOf: (pool: string) => SessionLimits | undefined;
  readonly now: () => number;
  readonly metrics?: Pick<MetricsSink, 'failed'>;
}

/** A session the control channel looks after, from READY (or RESUME) on. */
interface LiveSession {
  readonly id: string;
  readonly pool: string;
  /** Resolves true once the station's client is on the console (at once for a resumed session). */
  readonly connected: Promise<boolean>;
  /** The record's connection time, when known (a resumed session). */
  readonly connectedAt?: number;
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
  // A drained pool has nothing ready for a station, whatever runs in it.
  const pools = deps.status().pools.map((p) => `${p.name}:${p.drained ? 0 : p.counts.clean}/${p.size}`).join(',');
  conn.write(`WELCOME version=1 pools=${pools}${deps.defaultPool ? ` default=${deps.defaultPool}` : ''}`);

  const request = await conn.nextLine(deps.silenceLimitMs);
  if (request === 'closed' || request === 'timeout') return conn.close();
  const r = parseMessage(request);
  if (r?.word === 'RESUME') return resume(conn, r.fields['session'] ?? '', log, deps);
  if (r?.word !== 'REQUEST') return fail(400, 'bad-request', 'expected REQUEST [pool=<name>] or RESUME session=<id>');
  const pool = r.fields['pool'] ?? deps.defaultPool;
  if (pool === undefined || !deps.status().pools.some((p) => p.name === pool)) return fail(404, 'no-such-pool', pool ?? '');

  let live: LiveSession;
  try {
    const handoff = await deps.dispatcher.request({
      station: conn.remoteAddress,
      stationName: name,
      protocol: 'v1',
      pool,
      signal: conn.closed,
      onQueued: (position) => conn.write(`QUEUED position=${position}`),
    });
    const ticket = handoff.ticket === undefined ? '' : ` ticket=${handoff.ticket}`;
    conn.write(`READY session=${handoff.session} vm=${handoff.vm} host=${deps.spice.host} port=${deps.spice.port}${ticket} expires=${Math.round(handoff.expiresMs / 1000)}`);
    live = { id: handoff.session, pool, connected: handoff.connected };
  } catch (e) {
    const err = asTabulaError(e);
    if (conn.closed.aborted) return;
    deps.logger.warning('station-not-served', { ...log, code: err.code, error: err.message });
    deps.metrics?.failed(err.code, 'station-v1');
    conn.write(stationError(err.code));
    return conn.close();
  }
  await controlSession(conn, live, log, deps);
}

/** RESUME: a station takes up its running session again on a new connection. */
async function resume(conn: StationConnection, sessionId: string, log: Record<string, string>, deps: V1Deps): Promise<void> {
  let found: { pool: string; session: SessionRecord };
  try {
    found = await deps.dispatcher.resume(conn.remoteAddress, sessionId);
  } catch (e) {
    const err = asTabulaError(e);
    deps.logger.warning('station-resume-refused', { ...log, session: sessionId.slice(0, 32), code: err.code });
    conn.write(err.code === 'not-found' ? 'ERR 404 no-such-session' : stationError(err.code));
    return conn.close();
  }
  await controlSession(conn, { id: sessionId, pool: found.pool, connected: Promise.resolve(true), ...(found.session.connectedAt === undefined ? {} : { connectedAt: found.session.connectedAt }) }, log, deps);
}

/**
 * The session's control channel: CONNECTED, INPUT reports, warnings before a
 * limit ends the session, PING/PONG, and ENDED with the cause.
 */
async function controlSession(conn: StationConnection, live: LiveSession, log: Record<string, string>, deps: V1Deps): Promise<void> {
  let ended: SessionEndCause | undefined;
  let signalEnded: () => void = () => undefined;
  const endedByServer = new Promise<void>((resolve) => (signalEnded = resolve));
  const subscription = deps.onSessionEnded((e) => {
    if (e.session !== live.id) return;
    ended = e.cause;
    signalEnded();
  });
  let connectedAt = live.connectedAt;
  let warned: SessionDeadline | undefined;
  /** Read each time: staff or a reload may change them while the session is under way. */
  const limitsNow = () => deps.limitsOf(live.pool);
  /** The limit that will end the session, as far as this channel knows. */
  const deadline = (limits: SessionLimits | undefined): SessionDeadline | undefined =>
    connectedAt === undefined || limits === undefined ? undefined : sessionDeadline({ id: live.id, station: conn.remoteAddress, protocol: 'v1', handedAt: connectedAt, connectedAt }, limits, deps.activity.lastInput(live.id));
  /** Tells the station of a coming end once, and that it is off when input moved it away. */
  const warnIfDue = () => {
    const limits = limitsNow();
    const d = deadline(limits);
    const now = deps.now();
    if (d !== undefined && limits !== undefined && now >= warnAt(d, limits)) {
      if (warned?.at !== d.at || warned.reason !== d.reason) conn.write(`WARN session=${live.id} reason=${d.reason} seconds=${Math.max(0, Math.ceil((d.at - now) / 1000))}`);
      warned = d;
    } else if (warned !== undefined) {
      conn.write(`WARN session=${live.id} reason=none`);
      warned = undefined;
    }
  };
  /** How long until the loop must look at the time again: the next ping or warning. */
  const nextWait = () => {
    const limits = limitsNow();
    const d = deadline(limits);
    const toWarn = d === undefined || limits === undefined || warned !== undefined ? Infinity : warnAt(d, limits) - deps.now();
    return Math.max(50, Math.min(deps.pingEveryMs, toWarn));
  };
  let wake: () => void = () => undefined;
  try {
    void live.connected.then((ok) => {
      if (ok) {
        connectedAt ??= deps.now();
        deps.activity.report(live.id, connectedAt);
        conn.write(`CONNECTED session=${live.id}`);
        // The limits start counting now: the loop looks at its timers again.
        wake();
      } else if (ended === undefined) {
        ended = 'not-connected';
        signalEnded();
      }
    });
    let lastHeard = deps.now();
    let lastPing = deps.now();
    let pending = conn.nextLine(deps.pingEveryMs);
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const tick = new Promise<'tick'>((resolve) => {
        wake = () => resolve('tick');
        timer = setTimeout(wake, nextWait());
      });
      const next = await Promise.race([pending, endedByServer.then(() => 'ended' as const), tick]);
      clearTimeout(timer);
      if (next === 'ended') break;
      if (next === 'closed') {
        ended = 'station';
        break;
      }
      if (next !== 'tick') {
        if (next !== 'timeout') {
          lastHeard = deps.now();
          const m = parseMessage(next);
          if (m?.word === 'PING') conn.write('PONG');
          else if (m?.word === 'INPUT') deps.activity.report(live.id, deps.now());
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
      const now = deps.now();
      if (now - lastHeard >= deps.silenceLimitMs) {
        ended = 'station';
        deps.logger.warning('station-silent', { ...log, session: live.id });
        break;
      }
      if (now - lastPing >= deps.pingEveryMs) {
        conn.write('PING');
        lastPing = now;
      }
      warnIfDue();
    }
    // The station ended it (END, gone, silent): its VM is used, so it is recycled.
    if (ended === 'station') await deps.dispatcher.endSession(live.id);
    conn.write(`ENDED session=${live.id} reason=${ended ?? 'error'}`);
    deps.logger.notice('station-told-session-ended', { ...log, session: live.id, reason: ended ?? 'error' });
  } finally {
    subscription.dispose();
    conn.close();
  }
}
