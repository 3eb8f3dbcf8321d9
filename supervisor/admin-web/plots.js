// Plots of the last day per pool: depth (the fewest clean VMs each minute,
// against the pool's size) and hand-off waits (each minute's mean and
// longest), drawn as SVG from the supervisor's history (kept across its restarts).
import { get } from './api.js';
import { clockTime, h, replaceContent, s } from './dom.js';

const W = 720;
const H = 200;
const PAD = { left: 48, right: 12, top: 12, bottom: 28 };
const DAY = 24 * 3_600_000;
/** Live, but not more often than this: the history moves by the minute. */
const REFRESH_MS = 30_000;

export const plotsPage = {
  title: 'Plots',
  enter(main, ctx) {
    this.ctx = ctx;
    this.box = h('div', { id: 'plots' });
    replaceContent(
      main,
      h('h1', {}, 'Plots: the last 24 hours'),
      h('p', { class: 'muted' }, 'Minute by minute, kept across restarts of the supervisor (written away every few minutes); the session log keeps every session.'),
      this.box,
    );
    this.load();
  },
  leave() {
    clearTimeout(this.timer);
  },
  overview() {
    // News arrived: redraw, at most every REFRESH_MS.
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.load();
    }, REFRESH_MS);
  },
  async load() {
    let history;
    try {
      history = await get('/api/history');
    } catch (e) {
      replaceContent(this.box, h('p', { class: 'form-error', role: 'alert' }, `${e.message} (${e.code})`));
      return;
    }
    const to = this.ctx.now();
    const from = to - DAY;
    if (history.pools.length === 0) return replaceContent(this.box, h('p', { class: 'muted' }, 'No pool yet.'));
    replaceContent(this.box, ...history.pools.map((p) => poolPlots(p, from, to, history.minuteMs)));
  },
};

function poolPlots(pool, from, to, minuteMs) {
  const samples = pool.samples.filter((x) => x.at + minuteMs > from);
  const last = samples.at(-1);
  const lowest = samples.reduce((lo, x) => (lo === undefined || x.clean < lo.clean ? x : lo), undefined);
  const depthSummary = last ? `Lowest ${lowest.clean} clean at ${clockTime(lowest.at)}; in the last minute at least ${last.clean} of ${last.size}.` : 'No data yet.';
  const yDepth = Math.max(1, ...samples.map((x) => Math.max(x.size, x.clean)));
  const depth = chart({
    from,
    to,
    yMax: yDepth,
    yFormat: (v) => String(v),
    integers: true,
    label: `Clean VMs in pool ${pool.name}. ${depthSummary}`,
    draw: (x, y) => [
      s('path', { class: 'size-line', d: stepPath(samples.map((p) => [p.at, p.size]), x, y, to) }),
      s('path', { class: 'depth-line', d: stepPath(samples.map((p) => [p.at, p.clean]), x, y, to) }),
    ],
  });
  const handed = samples.filter((x) => x.handoffs > 0);
  const count = handed.reduce((n, x) => n + x.handoffs, 0);
  const longest = handed.reduce((m, x) => (m === undefined || x.waitMaxMs > m.waitMaxMs ? x : m), undefined);
  const mean = count === 0 ? 0 : handed.reduce((t, x) => t + x.waitMeanMs * x.handoffs, 0) / count;
  const waitSummary = count === 0 ? 'No hand-off yet.' : `${count} hand-off(s); mean wait ${(mean / 1000).toFixed(2)} s; longest ${(longest.waitMaxMs / 1000).toFixed(2)} s at ${clockTime(longest.at)}.`;
  const wait = chart({
    from,
    to,
    yMax: Math.max(1, ...handed.map((x) => x.waitMaxMs / 1000)),
    yFormat: (v) => `${v} s`,
    label: `Hand-off waits in pool ${pool.name}. ${waitSummary}`,
    draw: (x, y) =>
      handed.map((p) =>
        s(
          'g',
          {},
          s('title', {}, `${clockTime(p.at)}: ${p.handoffs} hand-off(s), mean ${(p.waitMeanMs / 1000).toFixed(2)} s, longest ${(p.waitMaxMs / 1000).toFixed(2)} s`),
          s('line', { class: 'wait-max', x1: x(p.at), x2: x(p.at), y1: y(0), y2: y(p.waitMaxMs / 1000) }),
          s('circle', { class: 'wait-mean', cx: x(p.at), cy: y(p.waitMeanMs / 1000), r: 3 }),
        ),
      ),
  });
  return h(
    'section',
    { class: 'pool-plots', 'data-pool': pool.name },
    h('h2', {}, `Pool ${pool.name}`),
    h('figure', {}, depth, h('figcaption', {}, h('span', { class: 'key depth' }, 'fewest clean VMs each minute'), h('span', { class: 'key size' }, 'pool size'), ' ', depthSummary)),
    h('figure', {}, wait, h('figcaption', {}, h('span', { class: 'key wait' }, 'mean wait (dot), longest (bar)'), ' ', waitSummary, ' A wait runs from a station asking to its VM handed over.')),
  );
}

/** An SVG chart with a time axis (3-hour ticks, local time) and a value axis; `draw(x, y)` adds the data. */
function chart({ from, to, yMax, yFormat, label, draw, integers = false }) {
  const x = (t) => (PAD.left + ((t - from) / (to - from)) * (W - PAD.left - PAD.right)).toFixed(1);
  const y = (v) => (H - PAD.bottom - (v / yMax) * (H - PAD.top - PAD.bottom)).toFixed(1);
  const yTicks = niceTicks(yMax, integers);
  const xTicks = [];
  const first = new Date(from);
  first.setMinutes(0, 0, 0);
  for (let t = first.getTime(); t <= to; t += 3_600_000) if (t >= from && new Date(t).getHours() % 3 === 0) xTicks.push(t);
  return s(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, class: 'chart' },
    ...yTicks.map((v) => s('g', { class: 'grid' }, s('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }), s('text', { x: PAD.left - 6, y: y(v), 'text-anchor': 'end', 'dominant-baseline': 'middle' }, yFormat(v)))),
    ...xTicks.map((t) => s('g', { class: 'grid' }, s('line', { x1: x(t), x2: x(t), y1: PAD.top, y2: H - PAD.bottom }), s('text', { x: x(t), y: H - 8, 'text-anchor': 'middle' }, `${String(new Date(t).getHours()).padStart(2, '0')}:00`))),
    s('line', { class: 'axis', x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0) }),
    ...draw(x, y),
  );
}

/** A stepped line through [time, value] points, held until `to`. */
function stepPath(points, x, y, to) {
  if (points.length === 0) return '';
  let d = `M${x(points[0][0])},${y(points[0][1])}`;
  for (let i = 1; i < points.length; i++) d += `H${x(points[i][0])}V${y(points[i][1])}`;
  return d + `H${x(to)}`;
}

/** Up to 5 round values from 0 to max (whole numbers only, for counts of VMs). */
function niceTicks(max, integers) {
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const nice = [1, 2, 5, 10].map((m) => m * mag).find((st) => st >= raw) ?? raw;
  const step = integers ? Math.max(1, Math.round(nice)) : nice;
  const ticks = [];
  for (let v = 0; v <= max + 1e-9; v += step) ticks.push(Number(v.toFixed(6)));
  return ticks;
}
