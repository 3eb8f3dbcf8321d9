import type { SessionStarted } from '../../../app/dispatcher.js';
import type { SupervisorStatus } from '../../../app/reconciler.js';
import { describeBounds, TIMEOUT_BOUNDS, TIMEOUT_KEYS } from '../../../domain/pool-timeouts.js';
import { durations, type SessionLogEntry } from '../../../domain/session-log.js';
import { liveSessions } from '../../../domain/status.js';

/**
 * The overview as the page draws it: every pool with its VMs (state, since
 * when, the session on it) and the sessions under way. `now` is the server's
 * clock, so the page counts durations from it whatever the laptop's clock says.
 */
export function overviewOf(status: SupervisorStatus) {
  return {
    state: status.state,
    reason: status.reason,
    line: status.line,
    pools: status.pools.map((p) => ({
      name: p.name,
      size: p.size,
      healthy: p.healthy,
      healthReason: p.healthReason,
      drained: p.drained,
      counts: p.counts,
      ...(p.image === undefined ? {} : { image: p.image }),
      ...(p.timeouts === undefined ? {} : { timeouts: p.timeouts }),
      vms: p.vms.map((vm) => ({
        name: vm.name,
        slot: vm.slot,
        state: vm.state,
        active: vm.active,
        stateSince: vm.stateSince,
        ...(vm.session ? { session: vm.session.id } : {}),
      })),
    })),
    sessions: liveSessions(status.pools),
    /** What the settings page's timeout fields accept, and how to say it (the supervisor checks again). */
    timeoutBounds: Object.fromEntries(TIMEOUT_KEYS.map((k) => [k, { ...TIMEOUT_BOUNDS[k], text: describeBounds(TIMEOUT_BOUNDS[k]) }])),
  };
}

export type Overview = ReturnType<typeof overviewOf>;

export function sessionStartedView(e: SessionStarted) {
  return { session: e.session, station: e.station, ...(e.stationName === undefined ? {} : { stationName: e.stationName }), pool: e.pool, vm: e.vm };
}

/** A session log entry with its durations worked out, as the sessions page lists it. */
export function sessionEntryView(e: SessionLogEntry) {
  return { ...e, ...durations(e) };
}
