// The session log: filters (when, pool, station, reason), the newest first, and
// the same selection as CSV (the format tabulactl sessions --csv writes).
import { get } from './api.js';
import { clockTime, dataTable, h, replaceContent, span } from './dom.js';

const HOUR = 3_600_000;
const PERIODS = [
  ['1h', 'the last hour', HOUR],
  ['24h', 'the last 24 hours', 24 * HOUR],
  ['7d', 'the last 7 days', 7 * 24 * HOUR],
  ['30d', 'the last 30 days', 30 * 24 * HOUR],
  ['custom', 'since a date…', 0],
];
const REASONS = ['idle', 'time-limit', 'station', 'disconnected', 'not-connected', 'shutdown', 'admin', 'wipe', 'error'];

export const sessionsPage = {
  title: 'Sessions',
  enter(main, ctx) {
    this.ctx = ctx;
    const pools = (ctx.overview?.pools ?? []).map((p) => p.name);
    this.period = h('select', { id: 'f-period', name: 'period' }, ...PERIODS.map(([v, label]) => h('option', { value: v, selected: v === '24h' }, label)));
    this.date = h('input', { type: 'datetime-local', id: 'f-date', name: 'date', hidden: true, 'aria-label': 'Since' });
    this.pool = h('select', { id: 'f-pool', name: 'pool' }, h('option', { value: '' }, 'all pools'), ...pools.map((p) => h('option', { value: p }, p)));
    this.station = h('input', { id: 'f-station', name: 'station', type: 'search', placeholder: 'address or name', maxlength: 64 });
    this.reason = h('select', { id: 'f-reason', name: 'reason' }, h('option', { value: '' }, 'any reason'), ...REASONS.map((r) => h('option', { value: r }, r)));
    this.csv = h('a', { class: 'button', id: 'csv', href: '#', download: '' }, 'Download CSV');
    this.result = h('div', { id: 'sessions-result', 'aria-live': 'polite' });
    const form = h(
      'form',
      { class: 'filters', id: 'session-filters' },
      field('f-period', 'Ended in', this.period, this.date),
      field('f-pool', 'Pool', this.pool),
      field('f-station', 'Station', this.station),
      field('f-reason', 'Why it ended', this.reason),
      h('div', { class: 'field' }, h('button', { type: 'submit', class: 'primary' }, 'Show'), this.csv),
    );
    this.period.addEventListener('change', () => {
      this.date.hidden = this.period.value !== 'custom';
      if (!this.date.hidden) this.date.focus();
    });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.load();
    });
    form.addEventListener('change', () => this.updateCsv());
    replaceContent(main, h('h1', {}, 'Sessions'), form, this.result);
    this.load();
  },
  /** A session ended while the page is open: show it if it fits the filters. */
  session(name) {
    if (name === 'session-ended') this.load();
  },
  query() {
    const q = new URLSearchParams();
    const period = PERIODS.find(([v]) => v === this.period.value);
    let since = this.ctx.now() - (period?.[2] ?? 24 * HOUR);
    if (this.period.value === 'custom') since = this.date.value ? new Date(this.date.value).getTime() : NaN;
    if (!Number.isNaN(since)) q.set('since', String(Math.max(0, Math.round(since))));
    if (this.pool.value) q.set('pool', this.pool.value);
    if (this.station.value.trim()) q.set('station', this.station.value.trim());
    if (this.reason.value) q.set('reason', this.reason.value);
    return q;
  },
  updateCsv() {
    this.csv.href = `/api/sessions.csv?${this.query()}`;
  },
  async load() {
    this.updateCsv();
    let r;
    try {
      r = await get(`/api/sessions?${this.query()}`);
    } catch (e) {
      replaceContent(this.result, h('p', { class: 'form-error', role: 'alert' }, `${e.message} (${e.code})`));
      return;
    }
    if (r.entries.length === 0) return replaceContent(this.result, h('p', { class: 'muted' }, 'No session ended in that selection.'));
    replaceContent(
      this.result,
      h('p', {}, r.total > r.entries.length ? `The newest ${r.entries.length} of ${r.total} sessions (the CSV has them all).` : `${r.total} session(s), newest first.`),
      dataTable(
        { id: 'session-log' },
        ['Ended', 'Station', 'Pool', 'VM', 'Waited', 'Used', 'Why it ended'],
        r.entries.map((e) =>
          h(
            'tr',
            { 'data-session': e.session },
            h('td', {}, clockTime(e.endedAt)),
            h('td', {}, e.station.name ? `${e.station.name} (${e.station.address})` : e.station.address),
            h('td', {}, e.pool),
            h('td', {}, e.vm),
            h('td', {}, span(e.waitMs)),
            h('td', {}, span(e.sessionMs)),
            h('td', { class: 'reason' }, e.reason),
          ),
        ),
      ),
    );
  },
};

function field(id, label, ...inputs) {
  return h('div', { class: 'field' }, h('label', { for: id }, label), ...inputs);
}
