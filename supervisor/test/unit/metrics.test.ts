import t from 'tap';
import { Metrics } from '../../src/app/metrics.js';
import type { MetricFamily } from '../../src/domain/metrics.js';
import { formatNumber, renderPrometheus } from '../../src/render/prometheus.js';

const text = (m: Metrics): string => renderPrometheus(m.collect());

t.test('a counter without labels shows 0 from the start and counts up', async (t) => {
  const m = new Metrics();
  const c = m.counter('tabula_rounds_total', 'Reconcile rounds run.');
  t.equal(text(m), '# HELP tabula_rounds_total Reconcile rounds run.\n# TYPE tabula_rounds_total counter\ntabula_rounds_total 0\n');
  c.inc();
  c.inc({}, 2.5);
  t.equal(text(m), '# HELP tabula_rounds_total Reconcile rounds run.\n# TYPE tabula_rounds_total counter\ntabula_rounds_total 3.5\n');
});

t.test('a labelled counter has one series per label set, sorted by label values', async (t) => {
  const m = new Metrics();
  const c = m.counter('tabula_steps_total', 'Steps executed.', ['pool', 'step']);
  t.equal(text(m), '# HELP tabula_steps_total Steps executed.\n# TYPE tabula_steps_total counter\n', 'no series before the first inc');
  c.inc({ step: 'start-vm', pool: 'lab' });
  c.inc({ pool: 'desk', step: 'start-vm' });
  c.inc({ pool: 'desk', step: 'define-vm' }, 3);
  c.inc({ pool: 'desk', step: 'start-vm' });
  t.equal(
    text(m),
    [
      '# HELP tabula_steps_total Steps executed.',
      '# TYPE tabula_steps_total counter',
      'tabula_steps_total{pool="desk",step="define-vm"} 3',
      'tabula_steps_total{pool="desk",step="start-vm"} 2',
      'tabula_steps_total{pool="lab",step="start-vm"} 1',
      '',
    ].join('\n'),
    'labels in declared order, whatever order the caller wrote them in',
  );
});

t.test('counters never go down', async (t) => {
  const c = new Metrics().counter('c_total', 'c');
  for (const by of [-1, NaN, Infinity]) t.throws(() => c.inc({}, by), { code: 'invalid-argument' }, `inc by ${by}`);
});

t.test('a gauge is set per label set and reset clears all of them', async (t) => {
  const m = new Metrics();
  const g = m.gauge('tabula_vms', 'VMs by pool and state.', ['pool', 'state']);
  g.set({ pool: 'desk', state: 'clean' }, 2);
  g.set({ pool: 'desk', state: 'booting' }, 1);
  g.set({ pool: 'desk', state: 'clean' }, 3);
  t.equal(text(m), '# HELP tabula_vms VMs by pool and state.\n# TYPE tabula_vms gauge\ntabula_vms{pool="desk",state="booting"} 1\ntabula_vms{pool="desk",state="clean"} 3\n');
  g.reset();
  g.set({ pool: 'lab', state: 'dirty' }, -1);
  t.equal(text(m), '# HELP tabula_vms VMs by pool and state.\n# TYPE tabula_vms gauge\ntabula_vms{pool="lab",state="dirty"} -1\n');
});

t.test('a histogram writes cumulative buckets, +Inf, _sum and _count', async (t) => {
  const m = new Metrics();
  const h = m.histogram('tabula_boot_seconds', 'Time from start to clean.', ['pool'], [1, 2.5, 10]);
  for (const v of [0.5, 1, 2, 3, 30]) h.observe({ pool: 'desk' }, v);
  h.observe({ pool: 'lab' }, 11);
  t.equal(
    text(m),
    [
      '# HELP tabula_boot_seconds Time from start to clean.',
      '# TYPE tabula_boot_seconds histogram',
      'tabula_boot_seconds_bucket{pool="desk",le="1"} 2',
      'tabula_boot_seconds_bucket{pool="desk",le="2.5"} 3',
      'tabula_boot_seconds_bucket{pool="desk",le="10"} 4',
      'tabula_boot_seconds_bucket{pool="desk",le="+Inf"} 5',
      'tabula_boot_seconds_sum{pool="desk"} 36.5',
      'tabula_boot_seconds_count{pool="desk"} 5',
      'tabula_boot_seconds_bucket{pool="lab",le="1"} 0',
      'tabula_boot_seconds_bucket{pool="lab",le="2.5"} 0',
      'tabula_boot_seconds_bucket{pool="lab",le="10"} 0',
      'tabula_boot_seconds_bucket{pool="lab",le="+Inf"} 1',
      'tabula_boot_seconds_sum{pool="lab"} 11',
      'tabula_boot_seconds_count{pool="lab"} 1',
      '',
    ].join('\n'),
  );
});

t.test('a histogram without labels starts at zero; a listed +Inf bound is the implicit one', async (t) => {
  const m = new Metrics();
  m.histogram('h_seconds', 'h', [], [0.1, Infinity]);
  t.equal(text(m), '# HELP h_seconds h\n# TYPE h_seconds histogram\nh_seconds_bucket{le="0.1"} 0\nh_seconds_bucket{le="+Inf"} 0\nh_seconds_sum 0\nh_seconds_count 0\n');
});

t.test('histogram buckets must be finite and increasing, and "le" is not a label', async (t) => {
  const m = new Metrics();
  t.throws(() => m.histogram('a', 'a', [], [1, 1]), { code: 'internal' });
  t.throws(() => m.histogram('b', 'b', [], [2, 1]), { code: 'internal' });
  t.throws(() => m.histogram('c', 'c', [], [NaN]), { code: 'internal' });
  t.throws(() => m.histogram('d', 'd', [], [1, Infinity, 2]), { code: 'internal' });
  t.throws(() => m.histogram('e', 'e', ['le'], [1]), { code: 'internal' });
  t.throws(() => m.histogram('f', 'f', [], [1]).observe({}, NaN), { code: 'invalid-argument' });
});

t.test('collect is a snapshot', async (t) => {
  const m = new Metrics();
  const h = m.histogram('h', 'h', [], [1]);
  h.observe({}, 0.5);
  const before = m.collect();
  h.observe({}, 0.5);
  const [family] = before;
  t.equal(family?.type, 'histogram');
  if (family?.type === 'histogram') t.same(family.samples, [{ labels: {}, buckets: [{ le: 1, count: 1 }], sum: 0.5, count: 1 }]);
});

t.test('label sets must be exactly the declared names, with string values', async (t) => {
  const m = new Metrics();
  const g = m.gauge('g', 'g', ['pool']);
  t.throws(() => g.set({} as never, 1), { code: 'invalid-argument', message: /missing pool/ });
  t.throws(() => g.set({ pool: 'a', slot: '1' } as never, 1), { code: 'invalid-argument', message: /unknown slot/ });
  t.throws(() => g.set({ pool: 1 } as never, 1), { code: 'invalid-argument', message: /must be a string/ });
  t.throws(() => m.counter('c', 'c', ['pool']).inc(), { code: 'invalid-argument' });
  t.throws(() => m.counter('d', 'd').inc({ pool: 'x' } as never), { code: 'invalid-argument' });
});

t.test('metric and label names follow Prometheus rules; a name is registered once', async (t) => {
  const m = new Metrics();
  for (const bad of ['', '1abc', 'a-b', 'a b', 'é']) t.throws(() => m.counter(bad, 'x'), { code: 'internal' }, `metric name ${JSON.stringify(bad)}`);
  for (const [i, bad] of ['', '1a', 'a:b', '__reserved', 'a-b'].entries()) t.throws(() => m.gauge(`g${i}`, 'x', [bad]), { code: 'internal' }, `label name ${JSON.stringify(bad)}`);
  t.throws(() => m.gauge('dup_labels', 'x', ['a', 'a']), { code: 'internal' });
  t.doesNotThrow(() => m.counter('ok:name_1', 'x', ['_a', 'b1']));
  m.counter('twice', 'x');
  t.throws(() => m.gauge('twice', 'y'), { code: 'internal', message: /twice/ });
  m.histogram('lat', 'x', [], [1]);
  t.throws(() => m.counter('lat_count', 'x'), { code: 'internal' }, 'a histogram owns its _bucket, _sum and _count');
  m.counter('reqs_sum', 'x');
  t.throws(() => m.histogram('reqs', 'x', [], [1]), { code: 'internal' });
});

t.test('onCollect callbacks fill gauges at the start of each collect, until disposed', async (t) => {
  const m = new Metrics();
  const g = m.gauge('tabula_clean', 'Clean VMs.', ['pool']);
  let clean = 1;
  const sub = m.onCollect(() => {
    g.reset();
    g.set({ pool: 'desk' }, clean);
  });
  t.equal(text(m), '# HELP tabula_clean Clean VMs.\n# TYPE tabula_clean gauge\ntabula_clean{pool="desk"} 1\n');
  clean = 4;
  t.equal(text(m), '# HELP tabula_clean Clean VMs.\n# TYPE tabula_clean gauge\ntabula_clean{pool="desk"} 4\n');
  sub.dispose();
  clean = 9;
  t.equal(text(m), '# HELP tabula_clean Clean VMs.\n# TYPE tabula_clean gauge\ntabula_clean{pool="desk"} 4\n', 'no longer called');
});

t.test('a throwing collector is skipped and reported; the others still run', async (t) => {
  const errors: unknown[] = [];
  const m = new Metrics({ onCollectError: (e) => errors.push(e) });
  const g = m.gauge('up_pools', 'Pools.');
  m.onCollect(() => {
    throw new Error('libvirt went away');
  });
  m.onCollect(() => g.set({}, 2));
  t.equal(text(m), '# HELP up_pools Pools.\n# TYPE up_pools gauge\nup_pools 2\n');
  t.equal(errors.length, 1);
  t.match(errors[0], { message: 'libvirt went away' });
  const quiet = new Metrics();
  quiet.onCollect(() => {
    throw new Error('x');
  });
  t.same(quiet.collect(), [], 'without a handler the failure is just skipped');
});

t.test('collect and render order families by name', async (t) => {
  const m = new Metrics();
  m.counter('b_total', 'b');
  m.counter('a_total', 'a');
  t.same(m.collect().map((f) => f.name), ['a_total', 'b_total']);
  t.equal(text(m), '# HELP a_total a\n# TYPE a_total counter\na_total 0\n# HELP b_total b\n# TYPE b_total counter\nb_total 0\n');
});

t.test('render escapes help text and label values', async (t) => {
  const families: MetricFamily[] = [
    { name: 'esc', help: 'back\\slash and\nnewline "quotes" stay', type: 'gauge', samples: [{ labels: { path: 'C:\\dir\n"x"' }, value: 1 }] },
  ];
  t.equal(renderPrometheus(families), '# HELP esc back\\\\slash and\\nnewline "quotes" stay\n# TYPE esc gauge\nesc{path="C:\\\\dir\\n\\"x\\""} 1\n');
});

t.test('render formats numbers the way Prometheus reads them', async (t) => {
  t.equal(formatNumber(Infinity), '+Inf');
  t.equal(formatNumber(-Infinity), '-Inf');
  t.equal(formatNumber(NaN), 'NaN');
  t.equal(formatNumber(0), '0');
  t.equal(formatNumber(-0), '0');
  t.equal(formatNumber(42), '42');
  t.equal(formatNumber(0.25), '0.25');
  t.equal(formatNumber(123456789012), '123456789012', 'integers without exponent');
  t.equal(formatNumber(1e21), '1e+21', 'an exponent only where spelling out stops');
  t.equal(formatNumber(1e-7), '1e-7');
  const families: MetricFamily[] = [{ name: 'g', help: 'g', type: 'gauge', samples: [{ labels: { k: 'a' }, value: NaN }, { labels: { k: 'b' }, value: -Infinity }] }];
  t.equal(renderPrometheus(families), '# HELP g g\n# TYPE g gauge\ng{k="a"} NaN\ng{k="b"} -Inf\n');
});

t.test('render sorts samples by label values, numbers as numbers, whatever the input order', async (t) => {
  const samples = ['10', '9', '1a', 'b', '2'].map((slot) => ({ labels: { pool: 'p', slot }, value: 1 }));
  const expected = '# HELP s s\n# TYPE s gauge\ns{pool="p",slot="2"} 1\ns{pool="p",slot="9"} 1\ns{pool="p",slot="10"} 1\ns{pool="p",slot="1a"} 1\ns{pool="p",slot="b"} 1\n';
  t.equal(renderPrometheus([{ name: 's', help: 's', type: 'gauge', samples }]), expected);
  t.equal(renderPrometheus([{ name: 's', help: 's', type: 'gauge', samples: [...samples].reverse() }]), expected);
});

t.test('render of nothing is empty', async (t) => {
  t.equal(renderPrometheus([]), '');
});
