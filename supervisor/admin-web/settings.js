// Settings: pool sizes, draining and timeouts, re-reading the config file, the admin
// password, and the two emergency buttons (wipe, factory reset), each behind
// a confirmation.
import { post } from './api.js';
import { h, replaceContent } from './dom.js';
import { confirmDialog } from './dialog.js';

/** A pool's timeouts, by their config keys, as the fields are labelled. */
const TIMEOUTS = [
  ['idle_timeout', 'Idle timeout'],
  ['max_session', 'Longest session'],
  ['session_warning', 'Warning before the end'],
  ['boot_timeout', 'Boot timeout'],
];

/** What a factory reset must be confirmed with, word for word (the supervisor checks it too). */
const RESET_WORD = 'factory-reset';

export const settingsPage = {
  title: 'Settings',
  enter(main, ctx) {
    this.ctx = ctx;
    this.pools = h('div', { id: 'pool-settings' });
    replaceContent(
      main,
      h('h1', {}, 'Settings'),
      h('h2', {}, 'Pools'),
      h('p', {}, 'Sizes, draining and timeouts are kept across restarts and config reloads (a size or a timeout until someone changes it in the configuration file). A drained pool hands out nothing and is not refilled; sessions under way go on. Timeouts are in seconds; they apply to sessions under way too.'),
      this.pools,
      h('h2', {}, 'Configuration file'),
      h('p', {}, 'Re-read the supervisor’s configuration file (as SIGHUP does). A file with a mistake is refused, naming the line and the key, and the running configuration stays.'),
      h('button', { type: 'button', id: 'reload', onclick: () => ctx.act(() => post('/api/reload'), 'Configuration re-read') }, 'Re-read the configuration'),
      passwordForm(ctx),
      dangerZone(ctx),
    );
    if (ctx.overview) this.overview(ctx.overview);
  },
  overview(ov) {
    // Fields being edited keep their value; the rest follows the live status.
    const editing = new Map([...this.pools.querySelectorAll('input')].filter((i) => i.dataset.dirty).map((i) => [i.id, i.value]));
    replaceContent(this.pools, ...ov.pools.flatMap((p) => [this.pool(p, editing.get(`size-${p.name}`)), this.timeouts(p, editing, ov.timeoutBounds ?? {})]));
  },
  timeouts(p, editing, bounds) {
    const general = h('p', { class: 'form-error', id: `timeouts-error-${p.name}`, role: 'alert' });
    const fields = TIMEOUTS.map(([key, label]) => {
      const id = `timeout-${p.name}-${key}`;
      const b = bounds[key] ?? {};
      const typed = editing.get(id);
      const input = h('input', { type: 'number', id, 'data-key': id, min: b.min, max: b.max, step: 'any', required: true, value: typed ?? p.timeouts?.[key] ?? '', 'aria-describedby': `${id}-error` });
      if (typed !== undefined) input.dataset.dirty = '1';
      input.addEventListener('input', () => (input.dataset.dirty = '1'));
      const error = h('p', { class: 'form-error', id: `${id}-error`, role: 'alert' });
      /** Why the typed value cannot be, as the supervisor would say it; undefined when it can. */
      const problem = () => {
        const v = input.value.trim();
        const n = Number(v);
        if (v === '' || !Number.isFinite(n)) return `${key} must be a number of seconds, ${b.text}`;
        if ((b.aboveMin ? n <= b.min : n < b.min) || n > b.max) return `${key} must be ${b.text}, not ${n}`;
        return undefined;
      };
      return { key, input, error, problem, node: h('div', { class: 'field' }, h('label', { for: id }, `${label} (s)`), input, error) };
    });
    const form = h(
      'form',
      { class: 'inline pool-form timeouts-form', 'data-timeouts': p.name, novalidate: true },
      h('h3', {}, `${p.name}: timeouts`),
      ...fields.map((f) => f.node),
      h('button', { type: 'submit', class: 'primary', 'data-key': `timeouts-${p.name}` }, 'Apply timeouts'),
      general,
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      for (const f of fields) f.error.textContent = '';
      general.textContent = '';
      const changed = fields.filter((f) => f.input.dataset.dirty);
      if (changed.length === 0) return (general.textContent = 'Nothing changed: edit a timeout first.');
      const refused = changed.filter((f) => (f.error.textContent = f.problem() ?? ''));
      if (refused.length > 0) return refused[0].input.focus();
      try {
        await post('/api/pools/timeouts', { pool: p.name, ...Object.fromEntries(changed.map((f) => [f.key, Number(f.input.value)])) });
        for (const f of changed) delete f.input.dataset.dirty;
        this.ctx.notify(`${p.name}: ${changed.map((f) => `${f.key} ${Number(f.input.value)} s`).join(', ')}`, 'ok');
      } catch (err) {
        // The supervisor names the key first: shown at that field.
        const at = fields.find((f) => err.message.startsWith(f.key));
        (at?.error ?? general).textContent = `${err.message} (${err.code})`;
        at?.input.focus();
      }
    });
    return form;
  },
  pool(p, typed) {
    const size = h('input', { type: 'number', id: `size-${p.name}`, 'data-key': `size-${p.name}`, min: 0, max: 64, step: 1, required: true, value: typed ?? p.size, 'aria-describedby': `pool-error-${p.name}` });
    if (typed !== undefined) size.dataset.dirty = '1';
    size.addEventListener('input', () => (size.dataset.dirty = '1'));
    const error = h('p', { class: 'form-error', id: `pool-error-${p.name}`, role: 'alert' });
    const form = h(
      'form',
      { class: 'inline pool-form', 'data-pool': p.name, novalidate: true },
      h('h3', {}, p.name, p.drained ? h('span', { class: 'badge drained' }, 'drained') : null),
      h('label', { for: `size-${p.name}` }, 'VMs to keep'),
      size,
      h('button', { type: 'submit', class: 'primary', 'data-key': `resize-${p.name}` }, 'Apply size'),
      h(
        'button',
        { type: 'button', 'data-key': `drain-${p.name}`, onclick: () => this.ctx.act(() => post(p.drained ? '/api/pools/undrain' : '/api/pools/drain', { pool: p.name }), `${p.name} ${p.drained ? 'serves again' : 'is drained'}`) },
        p.drained ? 'Undrain' : 'Drain',
      ),
      error,
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.textContent = '';
      const value = size.value.trim();
      if (!/^\d+$/.test(value)) {
        error.textContent = 'The size must be a whole number from 0 to 64.';
        return size.focus();
      }
      try {
        await post('/api/pools/resize', { pool: p.name, size: Number(value) });
        delete size.dataset.dirty;
        this.ctx.notify(`${p.name} keeps ${value} VM(s)`, 'ok');
      } catch (err) {
        error.textContent = `${err.message} (${err.code})`;
        size.focus();
      }
    });
    return form;
  },
};

function passwordForm(ctx) {
  const input = (id, label, autocomplete) => [h('label', { for: id }, label), h('input', { type: 'password', id, name: id, required: true, autocomplete })];
  const error = h('p', { class: 'form-error', role: 'alert', id: 'pw-error' });
  const form = h(
    'form',
    { class: 'stack', id: 'password-form' },
    h('h2', {}, 'Admin password'),
    ...input('pw-current', 'Current password', 'current-password'),
    ...input('pw-new', 'New password', 'new-password'),
    ...input('pw-repeat', 'The new password again', 'new-password'),
    error,
    h('button', { type: 'submit' }, 'Change the password'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const v = (id) => form.querySelector(`#${id}`).value;
    try {
      await post('/api/password', { current: v('pw-current'), password: v('pw-new'), repeat: v('pw-repeat') });
      form.reset();
      ctx.notify('Password changed; other logins have ended', 'ok');
    } catch (err) {
      error.textContent = `${err.message} (${err.code})`;
    }
  });
  return form;
}

function dangerZone(ctx) {
  const wipe = async () => {
    const ok = await confirmDialog({
      title: 'Wipe everything?',
      text: 'Every session ends now, every VM and disk of every pool is destroyed, and the pools are built afresh. Visitors lose what they were doing.',
      confirmLabel: 'Wipe now',
      danger: true,
    });
    if (!ok) return;
    const r = await ctx.act(() => post('/api/wipe', { confirm: true }));
    if (r) ctx.notify(`Wiped: ${r.domains} VM(s), ${r.files} file(s), ${r.sessions} session(s) ended`, 'ok');
  };
  const reset = async () => {
    const keep = h('input', { type: 'checkbox', id: 'reset-keep', name: 'keep', checked: true });
    const word = h('input', { id: 'reset-word', name: 'word', autocomplete: 'off', spellcheck: 'false' });
    const form = await confirmDialog({
      title: 'Factory reset?',
      text: 'The server goes back to how it was delivered: settings, sessions, whitelist and the admin password are erased, and it restarts.',
      confirmLabel: 'Reset the server',
      danger: true,
      fields: [
        h('p', {}, keep, ' ', h('label', { for: 'reset-keep' }, 'Keep the golden images (otherwise they are erased too)')),
        h('label', { for: 'reset-word' }, `Type ${RESET_WORD} to confirm`),
        word,
      ],
      ready: () => word.value.trim() === RESET_WORD,
    });
    if (form) await ctx.act(() => post('/api/factory-reset', { keepImages: keep.checked, confirm: word.value.trim() }), 'Factory reset accepted: the server restarts');
  };
  return h(
    'section',
    { class: 'danger-zone', 'aria-labelledby': 'danger-title' },
    h('h2', { id: 'danger-title' }, 'Emergency'),
    h('p', {}, 'Wipe: destroys every VM and session now; the pools are rebuilt. For when something is badly wrong.'),
    h('button', { type: 'button', class: 'danger', id: 'wipe', onclick: wipe }, 'Wipe…'),
    h('p', {}, 'Factory reset: the whole server back to how it was delivered.'),
    h('button', { type: 'button', class: 'danger', id: 'factory-reset', onclick: reset }, 'Factory reset…'),
  );
}
