// The VMs' whitelist: what a visitor's desktop may reach. Changes apply at
// once; an entry the supervisor refuses is explained next to the field.
import { get, post } from './api.js';
import { h, replaceContent } from './dom.js';

export const whitelistPage = {
  title: 'Whitelist',
  enter(main, ctx) {
    this.ctx = ctx;
    this.list = h('div', { id: 'whitelist-entries' });
    this.input = h('input', { id: 'wl-entry', name: 'entry', required: true, maxlength: 253, placeholder: 'example.org, *.example.org, 203.0.113.7 or 203.0.113.0/24', 'aria-describedby': 'wl-help wl-error' });
    this.error = h('p', { class: 'form-error', id: 'wl-error', role: 'alert' });
    const form = h(
      'form',
      { class: 'inline', id: 'whitelist-add' },
      h('label', { for: 'wl-entry' }, 'Add an entry'),
      this.input,
      h('button', { type: 'submit', class: 'primary' }, 'Add'),
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      await this.change('/api/whitelist/add', this.input.value, () => (this.input.value = ''));
    });
    replaceContent(
      main,
      h('h1', {}, 'Whitelist'),
      h('p', { id: 'wl-help' }, 'The VMs reach these names and addresses, and nothing else. A name also covers what it resolves to; "*.example.org" covers its subdomains.'),
      form,
      this.error,
      this.list,
    );
    this.load();
  },
  async load() {
    try {
      this.render((await get('/api/whitelist')).entries);
    } catch (e) {
      replaceContent(this.list, h('p', { class: 'form-error', role: 'alert' }, `${e.message} (${e.code})`));
    }
  },
  async change(path, entry, done) {
    this.error.textContent = '';
    try {
      const r = await post(path, { entry });
      done?.();
      this.render(r.entries);
      this.ctx.notify(path.endsWith('/add') ? `${entry.trim()} added` : `${entry} removed`, 'ok');
    } catch (e) {
      this.error.textContent = `${e.message} (${e.code})`;
      this.input.focus();
    }
  },
  render(entries) {
    if (entries.length === 0) return replaceContent(this.list, h('p', { class: 'muted' }, 'The whitelist is empty: the VMs reach nothing outside.'));
    replaceContent(
      this.list,
      h(
        'ul',
        { class: 'entries', 'aria-label': 'Whitelist entries' },
        ...entries.map((entry) =>
          h('li', { 'data-entry': entry }, h('code', {}, entry), h('button', { type: 'button', class: 'small', 'data-key': `rm-${entry}`, 'aria-label': `Remove ${entry}`, onclick: () => this.change('/api/whitelist/remove', entry) }, 'Remove')),
        ),
      ),
    );
  },
};
