// Overview: each pool as a grid of its VMs coloured (and labelled) by state,
// live; the sessions under way and the stations, with how long each has been on.
import { get, post } from './api.js';
import { clockTime, dataTable, h, replaceContent, span } from './dom.js';
import { confirmDialog } from './dialog.js';

const STATES = ['clean', 'booting', 'cloning', 'in-use', 'dirty'];
const STATE_HELP = {
  clean: 'ready for the next visitor',
  booting: 'clone starting up',
  cloning: 'disk being made',
  'in-use': 'a visitor has it',
  dirty: 'being destroyed after use',
};

export const overviewPage = {
  title: 'Overview',
  enter(main, ctx) {
    this.ctx = ctx;
    this.poolsBox = h('div', { id: 'pools' });
    this.sessionsBox = h('div', { id: 'live-sessions' });
    this.stationsBox = h('div', { id: 'stations' });
    this.statusLine = h('p', { class: 'statusline', id: 'status-line' });
    this.stations = [];
    replaceContent(
      main,
      h('h1', {}, 'Overview'),
      this.statusLine,
      legend(),
      this.poolsBox,
      h('h2', {}, 'Sessions under way'),
      this.sessionsBox,
      h('h2', {}, 'Stations'),
      this.stationsBox,
    );
    if (ctx.overview) this.overview(ctx.overview);
    else replaceContent(this.poolsBox, h('p', {}, 'Waiting for the supervisor…'));
    this.loadStations();
    // Durations move on their own; this only re-reads the clock, it asks the server nothing.
    this.ticker = setInterval(() => this.tick(), 1000);
  },
  leave() {
    clearInterval(this.ticker);
  },
  overview(ov) {
    this.statusLine.textContent = `Supervisor ${ov.state}${ov.reason ? ` (${ov.reason})` : ''}: ${ov.line}`;
    this.statusLine.className = `statusline ${ov.state}`;
    replaceContent(this.poolsBox, ...ov.pools.map((p) => this.pool(p, ov)));
    this.renderSessions(ov);
    this.renderStations();
  },
  session() {
    // A session started or ended: the lease table's "session" column changes; re-read the stations.
    this.loadStations();
  },
  async loadStations() {
    try {
      this.stations = (await get('/api/stations')).stations;
    } catch (e) {
      this.stations = [];
      this.stationsError = e.message;
    }
    this.renderStations();
  },
  tick() {
    for (const el of document.querySelectorAll('[data-since]')) el.textContent = span(this.ctx.now() - Number(el.getAttribute('data-since')));
  },
  pool(p, ov) {
    const sessions = new Map(ov.sessions.map((s) => [s.vm, s]));
    const counts = STATES.filter((st) => st !== 'clean' && p.counts[st] > 0).map((st) => `${p.counts[st]} ${st}`);
    return h(
      'section',
      { class: 'pool', 'aria-labelledby': `pool-${p.name}`, 'data-pool': p.name },
      h(
        'h2',
        { id: `pool-${p.name}` },
        `Pool ${p.name} `,
        h('span', { class: `badge ${p.healthy ? 'ok' : 'bad'}`, 'data-health': p.healthy ? 'healthy' : 'unhealthy' }, p.healthy ? 'healthy' : `unhealthy: ${p.healthReason}`),
        p.drained ? h('span', { class: 'badge drained' }, 'drained: hands out nothing') : null,
      ),
      p.image?.problem
        ? h('p', { class: 'banner bad', role: 'alert', 'data-banner': 'no-golden' }, h('strong', {}, 'No golden image — import one'), ` on the `, h('a', { href: '#images' }, 'Golden images page'), `. No VM is made until then (${p.image.problem}).`)
        : null,
      h('p', { class: 'counts' }, `${p.counts.clean} of ${p.size} clean`, counts.length ? ` · ${counts.join(' · ')}` : ''),
      p.vms.length === 0
        ? h('p', { class: 'muted' }, 'No VMs.')
        : h('ul', { class: 'vms', 'aria-label': `VMs of pool ${p.name}` }, ...p.vms.map((vm) => this.vm(vm, sessions.get(vm.name)))),
    );
  },
  vm(vm, session) {
    const who = session ? session.stationName ?? session.station : null;
    return h(
      'li',
      { class: `vm st-${vm.state}${vm.active ? '' : ' inactive'}`, 'data-vm': vm.name, 'data-state': vm.state, title: `${vm.name}: ${vm.state} (${STATE_HELP[vm.state] ?? ''})` },
      h('span', { class: 'slot' }, `#${vm.slot}`),
      h('span', { class: 'state' }, vm.state),
      h('span', { class: 'since', 'data-since': vm.stateSince }, span(this.ctx.now() - vm.stateSince)),
      who ? h('span', { class: 'who' }, who) : null,
      h('span', { class: 'name' }, vm.name),
      h('button', { type: 'button', class: 'small', 'data-key': `recycle-${vm.name}`, onclick: () => this.recycle(vm, session) }, 'Recycle'),
    );
  },
  async recycle(vm, session) {
    const ok = await confirmDialog({
      title: `Recycle ${vm.name}?`,
      text: session ? `A visitor at ${session.stationName ?? session.station} is using it: their session ends now.` : 'It is destroyed and a fresh clone takes its place.',
      confirmLabel: 'Recycle',
      danger: Boolean(session),
    });
    if (ok) await this.ctx.act(() => post('/api/vms/recycle', { vm: vm.name }), `${vm.name} is being recycled`);
  },
  renderSessions(ov) {
    if (ov.sessions.length === 0) return replaceContent(this.sessionsBox, h('p', { class: 'muted', id: 'no-sessions' }, 'Nobody is using a desktop.'));
    replaceContent(
      this.sessionsBox,
      dataTable(
        { id: 'sessions-table' },
        ['Station', 'Pool', 'VM', 'Handed over', 'Connected for', 'Idle for', ''],
        ov.sessions.map((s) =>
          h(
            'tr',
            { 'data-session': s.id },
            h('td', {}, s.stationName ? `${s.stationName} (${s.station})` : s.station),
            h('td', {}, s.pool),
            h('td', {}, s.vm),
            h('td', {}, clockTime(s.handedAt)),
            h('td', {}, s.connectedAt ? h('span', { 'data-since': s.connectedAt }, span(this.ctx.now() - s.connectedAt)) : 'not yet'),
            h('td', {}, h('span', { 'data-since': Math.max(s.handedAt, s.connectedAt ?? 0, s.lastInputAt ?? 0) }, '')),
            h('td', {}, h('button', { type: 'button', class: 'danger small', 'data-key': `end-${s.id}`, onclick: () => this.end(s) }, 'End session')),
          ),
        ),
      ),
    );
    this.tick();
  },
  async end(s) {
    const ok = await confirmDialog({
      title: 'End this session?',
      text: `The visitor at ${s.stationName ?? s.station} loses the desktop on ${s.vm} now; the VM is destroyed and replaced by a fresh clone.`,
      confirmLabel: 'End session',
      danger: true,
    });
    if (ok) await this.ctx.act(() => post('/api/sessions/end', { session: s.id }), `Session on ${s.vm} ended`);
  },
  renderStations() {
    const live = new Map((this.ctx.overview?.sessions ?? []).map((s) => [s.station, s]));
    if (this.stations.length === 0) {
      return replaceContent(this.stationsBox, h('p', { class: 'muted' }, this.stationsError ? `Cannot list stations: ${this.stationsError}` : 'No station has a DHCP lease (stations with fixed addresses show up under sessions when they use a desktop).'));
    }
    replaceContent(
      this.stationsBox,
      dataTable(
        { id: 'stations-table' },
        ['Station', 'Address', 'MAC', 'Last seen', 'Desktop'],
        this.stations.map((st) => {
          const s = live.get(st.address);
          return h('tr', {}, h('td', {}, st.name ?? '–'), h('td', {}, st.address), h('td', {}, st.mac), h('td', {}, clockTime(st.lastSeen)), h('td', {}, s ? [`${s.vm}, for `, h('span', { 'data-since': s.handedAt }, span(this.ctx.now() - s.handedAt))] : 'none'));
        }),
      ),
    );
  },
};

function legend() {
  return h(
    'ul',
    { class: 'legend', 'aria-label': 'VM states' },
    ...STATES.map((st) => h('li', {}, h('span', { class: `swatch st-${st}`, 'aria-hidden': 'true' }), h('strong', {}, st), `: ${STATE_HELP[st]}`)),
  );
}
