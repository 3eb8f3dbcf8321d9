import { asStationError } from '../domain/errors.js';
import { backoffS, isTransient, parseServerLine, stationLines, type PoolOffer, type ServerMessage } from '../domain/protocol.js';
import { requireServer } from '../config/station-conf.js';
import type { StationConfig } from '../config/station-config.js';
import type { ActivitySource } from '../ports/activity.js';
import type { Clock } from '../ports/clock.js';
import type { KioskUser } from '../ports/kiosk-user.js';
import type { Logger } from '../ports/logger.js';
import type { Pictures } from '../ports/pictures.js';
import type { Screen } from '../ports/screen.js';
import type { ServerConnection, ServerLink } from '../ports/server-link.js';
import type { RunningViewer, Viewer } from '../ports/viewer.js';
import { ScreenEvents } from './screen-events.js';
import { describeEnd, SCREEN_TEXT } from './texts.js';

export interface AgentDeps {
  /** The config for the next visit (the lease and the server's client.conf may change it between visits). */
  readonly config: () => StationConfig;
  /** Re-reads the settings (the DHCP lease, the files, the server's client.conf); never rejects (a failure keeps the last ones). */
  readonly refreshConfig: () => Promise<void>;
  readonly link: ServerLink;
  readonly screen: Screen;
  readonly viewer: Viewer;
  readonly kiosk: KioskUser;
  readonly activity: ActivitySource;
  readonly pictures: Pictures;
  readonly clock: Clock;
  readonly logger: Logger;
}

const CONNECT_TIMEOUT_MS = 5_000;
/** A server that says nothing for this long after our hello is not a Tabula server we can use. */
const WELCOME_TIMEOUT_MS = 10_000;
/** The server pings every 15 s and drops a station silent for 45 s; we give up on one silent for as long. */
const SERVER_SILENCE_MS = 45_000;
/** How long a broken control connection may be taken up again (RESUME) while the viewer still runs. */
const RESUME_WINDOW_MS = 30_000;
/** After the viewer left: how long to wait for the server's ENDED before closing. */
const ENDED_WAIT_MS = 3_000;
/** A refusal is shown this long before the slideshow comes back. */
const REFUSAL_SHOWN_MS = 5_000;

type VisitEnd = { readonly reason: string; readonly detail?: string };
type Message = ServerMessage | { readonly kind: 'closed' | 'timeout' | 'stopping' };

/**
 * The kiosk's whole life: the slideshow until someone touches the screen, then
 * one visit (the server, the OS menu, the queue, the desktop), then everything
 * the visitor's programs did is killed and removed, and the slideshow again.
 */
export class StationAgent {
  readonly #d: AgentDeps;
  readonly #events: ScreenEvents;
  readonly #pending = new WeakMap<ServerConnection, Promise<Message>>();
  /** Aborted when the agent is told to stop: every wait for the server ends at once. */
  #stopping: AbortSignal = new AbortController().signal;

  constructor(deps: AgentDeps) {
    this.#d = deps;
    this.#events = new ScreenEvents(deps.screen);
  }

  async run(signal: AbortSignal): Promise<void> {
    this.#stopping = signal;
    // A previous agent may have died mid-session: nothing of that visitor may be left.
    await this.#cleanup('start');
    while (!signal.aborted) {
      const touched = await this.#idle(signal);
      if (!touched) break;
      const end = await this.#visit(signal).catch((e: unknown) => {
        const err = asStationError(e);
        this.#d.logger.err('visit-failed', { code: err.code, error: err.message });
        return { reason: 'error', detail: err.message };
      });
      this.#d.logger.notice('visit-ended', { reason: end.reason, detail: end.detail });
      await this.#cleanup(end.reason);
    }
    await this.#d.screen.stop();
  }

  /** The slideshow (and the black screen after `blank_after`) until a touch; false when stopping. */
  async #idle(signal: AbortSignal): Promise<boolean> {
    const cfg = this.#d.config();
    const images = await this.#d.pictures.slideshow().catch(() => []);
    this.#events.clear();
    for (;;) {
      this.#d.screen.show({ kind: 'slideshow', images, intervalS: cfg.slideshowIntervalS, prompt: cfg.prompt });
      const e = await this.#events.next(['touched'], cfg.blankAfterS > 0 ? cfg.blankAfterS * 1000 : undefined, signal);
      if (e === 'aborted') return false;
      if (e !== 'timeout') return true;
      this.#d.screen.show({ kind: 'blank' });
      // A touch on the black screen only wakes the slideshow.
      if ((await this.#events.next(['touched'], undefined, signal)) === 'aborted') return false;
    }
  }

  async #visit(signal: AbortSignal): Promise<VisitEnd> {
    await this.#d.refreshConfig();
    const cfg = this.#d.config();
    this.#d.screen.show({ kind: 'waiting', images: await this.#animation(), intervalS: 1, message: SCREEN_TEXT.preparing });
    let conn = await this.#reach(signal);
    if (!conn) return { reason: signal.aborted ? 'stopping' : 'unavailable' };
    if (cfg.protocol === 'v0') return this.#visitV0(conn, signal);

    conn.send(stationLines.hello(cfg.stationName));
    const first = await this.#nextMessage(conn, WELCOME_TIMEOUT_MS);
    if (first.kind === 'stopping') return this.#close(conn, 'stopping');
    if (first.kind === 'v0-connect-now') return this.#sessionV0(conn, signal);
    if (first.kind === 'error' && cfg.protocol === 'auto' && (first.status === 400 || first.status === 505)) {
      // An original server took our hello for garbage: speak its protocol, say nothing.
      this.#d.logger.notice('server-speaks-v0', { status: first.status });
      conn.close();
      conn = await this.#reach(signal);
      return conn ? this.#visitV0(conn, signal) : { reason: 'unavailable' };
    }
    if (first.kind !== 'welcome') return this.#refused(conn, first, signal);

    const menu = cfg.pool === '' && first.pools.length > 1;
    // The server waits for REQUEST only so long; a visitor may take longer to choose:
    // the connection is let go during the menu and a new one asks for the choice.
    if (menu) conn.close();
    const pool = await this.#choosePool(first.pools, first.defaultPool, signal);
    if (pool === undefined) {
      conn.close();
      return { reason: signal.aborted ? 'stopping' : 'no-choice' };
    }
    if (menu) {
      const again = await this.#reach(signal);
      if (!again) return { reason: signal.aborted ? 'stopping' : 'unavailable' };
      again.send(stationLines.hello(cfg.stationName));
      const welcome = await this.#nextMessage(again, WELCOME_TIMEOUT_MS);
      if (welcome.kind === 'stopping') return this.#close(again, 'stopping');
      if (welcome.kind !== 'welcome') return this.#refused(again, welcome, signal);
      conn = again;
    }
    conn.send(stationLines.request(pool));
    return this.#waitForVm(conn, signal);
  }

  /** The server's signal port, retried with backoff behind the "unavailable" screen; undefined once it is back (the visitor starts again) or when stopping. */
  async #reach(signal: AbortSignal): Promise<ServerConnection | undefined> {
    for (let attempt = 0; !signal.aborted; attempt++) {
      // Between attempts the settings are read again: the server may be known only now (a
      // touch before the first DHCP lease), or be another one (a new lease).
      if (attempt > 0) await this.#d.refreshConfig();
      const cfg = this.#d.config();
      try {
        const conn = await this.#d.link.connect(CONNECT_TIMEOUT_MS);
        // Reached after an outage: the visitor may have gone; the slideshow asks again.
        if (attempt > 0) {
          conn.close();
          this.#d.logger.notice('server-reachable', { attempts: attempt + 1 });
          return undefined;
        }
        return conn;
      } catch (e) {
        const err = asStationError(e, 'server-unreachable');
        const waitS = backoffS(attempt, cfg.retryMinS, cfg.retryMaxS);
        if (attempt === 0) this.#d.logger.warning('server-unreachable', { server: cfg.serverAddress, code: err.code, error: err.message });
        this.#d.screen.show({ kind: 'unavailable', title: SCREEN_TEXT.unavailable, detail: SCREEN_TEXT.retrying(waitS) });
        await this.#d.clock.sleep(waitS * 1000, signal);
      }
    }
    return undefined;
  }

  async #choosePool(pools: readonly PoolOffer[], defaultPool: string, signal: AbortSignal): Promise<string | undefined> {
    const cfg = this.#d.config();
    if (cfg.pool !== '') return cfg.pool;
    if (pools.length <= 1) return pools[0]?.name ?? defaultPool;
    this.#events.clear();
    this.#d.screen.show({
      kind: 'menu',
      title: SCREEN_TEXT.menuTitle,
      pools: pools.map((p) => ({ name: p.name, label: cfg.poolLabels[p.name] ?? p.name, ready: p.ready })),
    });
    const e = await this.#events.next(['chose'], cfg.menuTimeoutS * 1000, signal);
    if (e === 'timeout' || e === 'aborted') return undefined;
    if (!pools.some((p) => p.name === e.pool)) return undefined;
    this.#d.screen.show({ kind: 'waiting', images: await this.#animation(), intervalS: 1, message: SCREEN_TEXT.preparing });
    return e.pool;
  }

  /** REQUEST sent: the animation and the place in the queue until READY. */
  async #waitForVm(conn: ServerConnection, signal: AbortSignal): Promise<VisitEnd> {
    const images = await this.#animation();
    for (;;) {
      if (signal.aborted) return this.#close(conn, 'stopping');
      const m = await this.#nextMessage(conn, SERVER_SILENCE_MS);
      switch (m.kind) {
        case 'queued':
          this.#d.screen.show({ kind: 'waiting', images, intervalS: 1, message: SCREEN_TEXT.preparing, position: m.position });
          break;
        case 'ready':
          return this.#sessionV1(conn, m, signal);
        case 'stopping':
          return this.#close(conn, 'stopping');
        case 'ping':
          conn.send(stationLines.pong());
          break;
        case 'pong':
          break;
        default:
          return this.#refused(conn, m, signal);
      }
    }
  }

  async #sessionV1(conn: ServerConnection, ready: Extract<ServerMessage, { kind: 'ready' }>, signal: AbortSignal): Promise<VisitEnd> {
    const cfg = this.#d.config();
    this.#d.screen.show({ kind: 'message', title: SCREEN_TEXT.starting, detail: '' });
    let viewer: RunningViewer;
    try {
      viewer = await this.#d.viewer.start({ host: ready.host, port: ready.port, ...(ready.ticket === undefined ? {} : { password: ready.ticket }), title: SCREEN_TEXT.viewerTitle });
    } catch (e) {
      // The server holds the VM for us: give it back at once rather than at its timeout.
      conn.send(stationLines.end());
      conn.close();
      const err = asStationError(e, 'viewer-failed');
      this.#d.logger.err('viewer-failed', { session: ready.session, error: err.message });
      this.#d.screen.show({ kind: 'unavailable', title: SCREEN_TEXT.refused, detail: SCREEN_TEXT.tryLater });
      await this.#d.clock.sleep(REFUSAL_SHOWN_MS, signal);
      return { reason: 'viewer-failed', detail: err.message };
    }
    this.#d.logger.info('viewer-started', { session: ready.session, vm: ready.vm });
    const opened = [conn];
    let viewerExit: number | null | undefined;
    void viewer.exited.then((c) => (viewerExit = c));
    let connected = false;
    this.#d.activity.start(() => conn.send(stationLines.input()), cfg.inputReportS * 1000);
    try {
      for (;;) {
        if (signal.aborted) return await this.#endSession(conn, viewer, 'stopping');
        const m = await Promise.race([this.#nextMessage(conn, SERVER_SILENCE_MS), viewer.exited.then(() => 'viewer-exited' as const)]);
        if (m === 'viewer-exited') {
          // The console went away: when the server ended the session it says so in a moment
          // (and why); else the visitor closed the viewer: tell the server.
          let end = await this.#awaitEnded(conn, ready.session);
          if (end === undefined) {
            conn.send(stationLines.end());
            end = await this.#awaitEnded(conn, ready.session);
          }
          return await this.#endSession(conn, viewer, end ?? 'viewer-exited', `exit=${viewerExit}`);
        }
        switch (m.kind) {
          case 'connected':
            connected = true;
            this.#d.logger.notice('session-connected', { session: ready.session });
            break;
          case 'warn':
            this.#d.screen.countdown(m.reason === 'none' ? null : { reason: m.reason, seconds: m.seconds, message: SCREEN_TEXT.countdown(m.reason) });
            break;
          case 'ended':
            return await this.#endSession(conn, viewer, m.reason);
          case 'stopping':
            return await this.#endSession(conn, viewer, 'stopping');
          case 'ping':
            conn.send(stationLines.pong());
            break;
          case 'pong':
          case 'queued':
            break;
          case 'error':
            // During a session the server answers a bad message and carries on; so do we.
            this.#d.logger.warning('server-error-in-session', { status: m.status, reason: m.reason });
            break;
          case 'closed':
          case 'timeout': {
            const resumed = connected ? await this.#resume(ready.session, viewer, signal) : undefined;
            if (!resumed) return await this.#endSession(conn, viewer, 'link-lost');
            conn = resumed;
            opened.push(conn);
            break;
          }
          default:
            this.#d.logger.warning('server-unexpected', { line: 'line' in m ? m.line.slice(0, 80) : m.kind });
        }
      }
    } finally {
      this.#d.activity.stop();
      this.#d.screen.countdown(null);
      // A connection given up for a resumed one (silent, not closed) goes too.
      for (const c of opened) c.close();
    }
  }

  /** The control connection broke while the desktop still runs: take the session up again on a new one. */
  async #resume(session: string, viewer: RunningViewer, signal: AbortSignal): Promise<ServerConnection | undefined> {
    const cfg = this.#d.config();
    const until = this.#d.clock.now() + RESUME_WINDOW_MS;
    let gone = false;
    void viewer.exited.then(() => (gone = true));
    for (let attempt = 0; !signal.aborted && !gone && this.#d.clock.now() < until; attempt++) {
      const conn = await this.#d.link.connect(CONNECT_TIMEOUT_MS).catch(() => undefined);
      if (conn) {
        conn.send(stationLines.hello(cfg.stationName));
        conn.send(stationLines.resume(session));
        for (;;) {
          const m = await this.#nextMessage(conn, WELCOME_TIMEOUT_MS);
          if (m.kind === 'welcome' || m.kind === 'ping' || m.kind === 'pong') continue;
          if (m.kind === 'stopping') {
            conn.close();
            return undefined;
          }
          if (m.kind === 'connected') {
            this.#d.logger.notice('session-resumed', { session, attempts: attempt + 1 });
            return conn;
          }
          this.#d.logger.warning('session-not-resumed', { session, answer: m.kind === 'error' ? `${m.status} ${m.reason}` : m.kind });
          conn.close();
          return undefined;
        }
      }
      await this.#d.clock.sleep(backoffS(attempt, cfg.retryMinS, 5) * 1000, signal);
    }
    return undefined;
  }

  async #awaitEnded(conn: ServerConnection, session: string): Promise<string | undefined> {
    const until = this.#d.clock.now() + ENDED_WAIT_MS;
    for (;;) {
      const left = until - this.#d.clock.now();
      if (left <= 0) return undefined;
      const m = await this.#nextMessage(conn, left);
      if (m.kind === 'ended' && m.session === session) return m.reason;
      if (m.kind === 'closed' || m.kind === 'timeout' || m.kind === 'stopping') return undefined;
    }
  }

  async #endSession(conn: ServerConnection, viewer: RunningViewer, reason: string, detail?: string): Promise<VisitEnd> {
    this.#d.screen.show({ kind: 'message', title: SCREEN_TEXT.ended, detail: describeEnd(reason) });
    await viewer.stop();
    conn.close();
    return { reason, detail };
  }

  /** v0: say nothing, wait for the original line, start the viewer on the configured Spice port. */
  async #visitV0(conn: ServerConnection, signal: AbortSignal): Promise<VisitEnd> {
    for (;;) {
      if (signal.aborted) return this.#close(conn, 'stopping');
      // An original server says nothing while no VM is clean: wait as long as it keeps the line open.
      const m = await this.#nextMessage(conn, undefined);
      if (m.kind === 'v0-connect-now') return this.#sessionV0(conn, signal);
      if (m.kind === 'stopping') return this.#close(conn, 'stopping');
      if (m.kind === 'closed') return { reason: 'server-closed' };
      if (m.kind === 'error') return this.#refused(conn, m, signal);
    }
  }

  async #sessionV0(conn: ServerConnection, signal: AbortSignal): Promise<VisitEnd> {
    const cfg = this.#d.config();
    this.#d.logger.notice('session-v0', { server: cfg.serverAddress, port: cfg.spicePort });
    this.#d.screen.show({ kind: 'message', title: SCREEN_TEXT.starting, detail: '' });
    let viewer: RunningViewer;
    try {
      viewer = await this.#d.viewer.start({ host: requireServer(cfg), port: cfg.spicePort, title: SCREEN_TEXT.viewerTitle });
    } catch (e) {
      conn.close();
      const err = asStationError(e, 'viewer-failed');
      this.#d.logger.err('viewer-failed', { error: err.message });
      return { reason: 'viewer-failed', detail: err.message };
    }
    // The original server repeats its line until the client is on, then closes: nothing more to read.
    const drain = (async () => {
      for (;;) {
        const kind = (await this.#nextMessage(conn, undefined)).kind;
        if (kind === 'closed' || kind === 'stopping') return;
      }
    })();
    const stop = new AbortController();
    const stopped = new Promise<'stopping'>((resolve) => {
      if (signal.aborted) return resolve('stopping');
      const done = (): void => resolve('stopping');
      signal.addEventListener('abort', done, { once: true });
      stop.signal.addEventListener('abort', () => signal.removeEventListener('abort', done), { once: true });
    });
    const code = await Promise.race([viewer.exited, stopped]).finally(() => stop.abort());
    conn.close();
    await drain;
    return this.#endSession(conn, viewer, code === 'stopping' ? 'stopping' : 'viewer-exited', `exit=${code}`);
  }

  /** The server said no (or something we do not understand): show why, then back to the slideshow. */
  async #refused(conn: ServerConnection, m: Message, signal: AbortSignal): Promise<VisitEnd> {
    conn.close();
    const transient = m.kind === 'closed' || m.kind === 'timeout' || (m.kind === 'error' && isTransient(m.status, m.reason));
    const detail = m.kind === 'error' ? `${m.status} ${m.reason}` : m.kind === 'unknown' ? m.line.slice(0, 80) : m.kind;
    this.#d.logger.warning('server-refused', { answer: detail, transient });
    this.#d.screen.show({ kind: 'unavailable', title: transient ? SCREEN_TEXT.unavailable : SCREEN_TEXT.refused, detail: SCREEN_TEXT.tryLater });
    await this.#d.clock.sleep(REFUSAL_SHOWN_MS, signal);
    return { reason: transient ? 'unavailable' : 'refused', detail };
  }

  #close(conn: ServerConnection, reason: string): VisitEnd {
    conn.close();
    return { reason };
  }

  /**
   * The next message, or 'timeout'. One read per connection is outstanding at
   * a time: a read that lost a race (to the viewer's exit, to a timeout) is
   * kept for the next call, so no line is ever read and dropped.
   */
  #nextMessage(conn: ServerConnection, timeoutMs: number | undefined): Promise<Message> {
    let read = this.#pending.get(conn);
    if (!read) {
      read = conn.next().then((line): Message => {
        this.#pending.delete(conn);
        return line === 'closed' || line === 'timeout' ? { kind: line } : parseServerLine(line);
      });
      this.#pending.set(conn, read);
    }
    if (this.#stopping.aborted) return Promise.resolve({ kind: 'stopping' });
    const timer = new AbortController();
    const stop = new Promise<Message>((resolve) => {
      const done = (): void => resolve({ kind: 'stopping' });
      this.#stopping.addEventListener('abort', done, { once: true });
      timer.signal.addEventListener('abort', () => this.#stopping.removeEventListener('abort', done), { once: true });
    });
    const waits = [read, stop];
    if (timeoutMs !== undefined) waits.push(this.#d.clock.sleep(timeoutMs, timer.signal).then((): Message => ({ kind: 'timeout' })));
    return Promise.race(waits).finally(() => timer.abort());
  }

  async #animation(): Promise<string[]> {
    return this.#d.pictures.animation().catch(() => []);
  }

  /** Every process of the kiosk account killed, every file of it gone: nothing of the visitor survives. */
  async #cleanup(reason: string): Promise<void> {
    try {
      const c = await this.#d.kiosk.endAll();
      this.#d.logger.notice('kiosk-cleaned', { reason, killed: c.killed, removed: c.removed });
    } catch (e) {
      const err = asStationError(e, 'cleanup-failed');
      // Loud, and the slideshow anyway: a stuck process must not keep the kiosk down.
      this.#d.logger.err('kiosk-cleanup-failed', { reason, code: err.code, error: err.message });
    }
  }
}
