// Golden images: each pool's image (and what a rollback goes back to), the
// images of the store, an upload from this computer into the store, and per
// pool the switch to another image and the rollback. Every button is one call
// of the same API as D-Bus and tabulactl.
import { ApiError, get, post, upload } from './api.js';
import { confirmDialog } from './dialog.js';
import { bytes, dataTable, h, replaceContent } from './dom.js';

const nameOf = (path) => (path ? path.slice(path.lastIndexOf('/') + 1) : '');
const shown = (e) => (e instanceof ApiError ? `${e.message} (${e.code})` : String(e));

export const imagesPage = {
  title: 'Golden images',
  enter(main, ctx) {
    this.ctx = ctx;
    this.images = undefined;
    this.poolsBox = h('div', { id: 'image-pools' });
    this.storeBox = h('div', { id: 'images' });
    this.importBox = this.importForm();
    this.banner = h('div', { id: 'images-banner' });
    this.top = h('div');
    this.bottom = h('div');
    this.formFirst = undefined;
    replaceContent(
      main,
      h('h1', {}, 'Golden images'),
      h('p', {}, 'Each pool clones its VMs from one golden image. Switching a pool to another image takes effect for new clones; sessions under way finish on the old one. A pool whose image has a problem makes no new clones until it is fixed.'),
      this.banner,
      this.top,
      h('h2', {}, 'Pools'),
      this.poolsBox,
      h('h2', {}, 'Images in the store'),
      this.storeBox,
      this.bottom,
    );
    this.overview(ctx.overview);
    this.load();
  },
  leave() {
    clearTimeout(this.reloadTimer);
  },
  /** The status changed (a switch, a rollback, a probation ended, a clone of an image came up): redraw, and re-read the list. */
  overview(ov) {
    const pools = ov?.pools ?? [];
    const missing = pools.filter((p) => p.image?.problem);
    replaceContent(
      this.banner,
      missing.length > 0
        ? h('div', { class: 'banner bad', role: 'alert', id: 'no-golden' }, h('strong', {}, 'No golden image'), ` for pool ${missing.map((p) => p.name).join(', ')}: import one here, then use it for the pool.`, ...missing.map((p) => h('div', { class: 'why' }, `${p.name}: ${p.image.problem}`)))
        : null,
    );
    // No usable image: the import is what to do, so it comes first (moved, not redrawn: a chosen file stays chosen).
    const first = missing.length > 0;
    if (first !== this.formFirst) {
      (first ? this.top : this.bottom).append(this.importBox);
      this.formFirst = first;
    }
    this.renderPools(pools);
    if (this.images !== undefined) this.renderStore();
    const key = JSON.stringify(pools.map((p) => [p.image, p.counts]));
    if (key !== this.poolsKey) {
      this.poolsKey = key;
      clearTimeout(this.reloadTimer);
      this.reloadTimer = setTimeout(() => this.load(), 300);
    }
  },
  async load() {
    try {
      this.images = (await get('/api/images')).images;
      this.loadError = undefined;
    } catch (e) {
      this.loadError = shown(e);
    }
    this.renderStore();
  },
  pools() {
    return this.ctx.overview?.pools ?? [];
  },
  importForm() {
    const file = h('input', { type: 'file', id: 'image-file', name: 'file', required: true, 'aria-describedby': 'image-help upload-error' });
    const name = h('input', { id: 'image-name', name: 'name', maxlength: 100, placeholder: 'the file name', 'aria-describedby': 'image-name-help upload-error', 'data-key': 'image-name' });
    this.progress = h('progress', { id: 'upload-progress', max: 1, value: 0, hidden: true });
    this.uploadStatus = h('p', { id: 'upload-status', role: 'status', 'aria-live': 'polite' });
    this.uploadError = h('p', { class: 'form-error', id: 'upload-error', role: 'alert' });
    this.uploadButton = h('button', { type: 'submit', class: 'primary' }, 'Upload and import');
    file.addEventListener('change', () => {
      if (file.files?.[0] && !name.value) name.placeholder = file.files[0].name;
    });
    const form = h(
      'form',
      { id: 'images-upload', class: 'upload', 'aria-labelledby': 'images-upload-title' },
      h('h2', { id: 'images-upload-title' }, 'Import an image'),
      h('p', { id: 'image-help' }, 'From this computer into the server\'s image store: a qcow2 or raw disk image without a backing file (flatten one with qemu-img convert). It is checked (format, qemu-img check, room left on the server) before it is kept; an image that fails is not kept.'),
      this.kernelNote = h('p', { class: 'muted', id: 'kernel-note' }),
      h('label', { for: 'image-file' }, 'Image file'),
      file,
      h('label', { for: 'image-name' }, 'Name in the store'),
      name,
      h('p', { class: 'muted', id: 'image-name-help' }, 'Letters, digits, ".", "_", "+" and "-"; empty: the file\'s name.'),
      h('div', { class: 'buttons' }, this.uploadButton),
      this.progress,
      this.uploadStatus,
      this.uploadError,
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const chosen = file.files?.[0];
      if (!chosen) {
        this.uploadError.textContent = 'Choose an image file first.';
        return file.focus();
      }
      await this.send(chosen, name.value.trim() || chosen.name, () => {
        form.reset();
        name.placeholder = 'the file name';
      });
    });
    return form;
  },
  async send(file, name, done) {
    this.uploadError.textContent = '';
    this.uploadButton.disabled = true;
    const query = `name=${encodeURIComponent(name)}`;
    try {
      this.uploadStatus.textContent = `Asking the server about ${name}…`;
      // Refused before a byte is sent: a bad or taken name, too big for the room left, another import under way.
      await get(`/api/images/check-upload?${query}&size=${file.size}`);
      this.progress.hidden = false;
      this.progress.value = 0;
      const r = await upload(`/api/images/upload?${query}`, file, (sent, total) => {
        this.progress.value = total ? sent / total : 0;
        this.uploadStatus.textContent =
          sent < total ? `Uploading ${name}: ${bytes(sent)} of ${bytes(total)} (${Math.floor((100 * sent) / total)} %)` : `Uploaded ${bytes(total)}; the server is checking the image (qemu-img)…`;
        if (sent >= total) this.progress.removeAttribute('value');
      });
      this.uploadStatus.textContent = `Imported ${r.image.name}: ${r.image.format}, ${bytes(r.image.virtualSize)} for the guest, sha256 ${r.image.sha256.slice(0, 12)}…`;
      this.ctx.notify(`${r.image.name} is in the store: use it for a pool below`, 'ok');
      done();
    } catch (e) {
      this.uploadStatus.textContent = '';
      this.uploadError.textContent = `Not imported: ${shown(e)}`;
    } finally {
      this.progress.hidden = true;
      this.uploadButton.disabled = false;
      this.load();
    }
  },
  renderPools(pools) {
    const direct = pools.filter((p) => p.image?.kernel);
    this.kernelNote.textContent = direct.length
      ? `Pool ${direct.map((p) => p.name).join(', ')} boots its kernel directly: an image uploaded here boots with the pool's kernel and initrd. An image that needs its own kernel and initrd is imported on the server (tabulactl image import FILE --kernel K --initrd I, or D-Bus ImportImage), not here.`
      : '';
    if (pools.length === 0) return replaceContent(this.poolsBox, h('p', { class: 'muted' }, 'No pool is configured.'));
    replaceContent(
      this.poolsBox,
      dataTable(
        { id: 'pool-images' },
        ['Pool', 'Clones from', 'State', 'Roll back to', ''],
        pools.map((p) => {
          const img = p.image ?? {};
          const state = img.problem
            ? h('td', { class: 'bad' }, `no golden image: ${img.problem}`)
            : !img.goldenConfirmed
              ? h('td', { class: 'warn', 'data-probation': 'true' }, 'on probation: until its first clones come up (two; one in a pool of one), three failed clones in a row roll the pool back by itself')
              : !p.healthy
                ? h('td', { class: 'bad' }, `unhealthy: ${p.healthReason}`)
                : h('td', { class: 'ok' }, 'in use, confirmed');
          return h(
            'tr',
            { 'data-pool': p.name },
            h('td', {}, p.name),
            h('td', { class: 'current' }, h('code', { title: img.goldenImage }, nameOf(img.goldenImage))),
            state,
            h('td', { class: 'previous' }, img.previousGoldenImage ? h('code', { title: img.previousGoldenImage }, nameOf(img.previousGoldenImage)) : '–'),
            h('td', {}, img.previousGoldenImage ? h('button', { type: 'button', class: 'small', 'data-key': `rollback-${p.name}`, onclick: () => this.rollback(p) }, 'Roll back') : null),
          );
        }),
      ),
    );
  },
  renderStore() {
    if (this.loadError) return replaceContent(this.storeBox, h('p', { class: 'form-error', role: 'alert' }, this.loadError));
    const pools = this.pools();
    const images = this.images ?? [];
    if (images.length === 0) return replaceContent(this.storeBox, h('p', { class: 'muted' }, 'The store is empty: import an image above.'));
    replaceContent(
      this.storeBox,
      dataTable(
        { id: 'images-table' },
        ['Image', 'Format', 'Guest disk', 'On the host', 'sha256', 'Used by', 'State', ''],
        images.map((i) => {
          const uses = [...i.currentOf.map((p) => `${p} (current)`), ...i.previousOf.map((p) => `${p} (previous)`)];
          const state = i.importing
            ? h('td', { class: 'warn' }, i.importing.copied < i.importing.total ? `importing: ${Math.floor((100 * i.importing.copied) / Math.max(1, i.importing.total))} %` : 'importing: being checked')
            : i.problem
              ? h('td', { class: 'bad' }, i.problem)
              : h('td', { class: 'ok' }, i.liveVms ? `usable; backs ${i.liveVms} running VM(s)` : 'usable');
          const usable = i.stored && !i.problem && !i.importing;
          const targets = usable ? pools.filter((p) => !i.currentOf.includes(p.name)) : [];
          return h(
            'tr',
            { 'data-image': i.name },
            h('td', {}, h('code', { title: i.path }, i.name), i.stored ? null : h('span', { class: 'muted' }, ' (config file, not in the store)')),
            h('td', {}, i.format ?? '–'),
            h('td', {}, bytes(i.virtualSize)),
            h('td', {}, bytes(i.actualSize)),
            h('td', {}, i.sha256 ? h('code', { title: i.sha256 }, i.sha256.slice(0, 12)) : '–'),
            h('td', {}, uses.length ? uses.join(', ') : '–'),
            state,
            h('td', {}, ...targets.map((p) => h('button', { type: 'button', class: 'small', 'data-key': `use-${i.name}-${p.name}`, onclick: () => this.use(p, i) }, `Use for pool ${p.name}`))),
          );
        }),
      ),
    );
  },
  async use(pool, image) {
    const current = nameOf(pool.image?.goldenImage) || 'its image';
    const ok = await confirmDialog({
      title: `Use ${image.name} for pool ${pool.name}?`,
      text: `New clones of pool ${pool.name} come from ${image.name} from now on. Sessions under way finish on the old image (${current}); its clean VMs are replaced one at a time, the others staying ready. ${current} becomes the image to roll back to. Until its first clones came up (two; one in a pool of one), three failed clones of it in a row roll the pool back by itself.`,
      confirmLabel: `Use ${image.name}`,
    });
    if (ok) await this.ctx.act(() => post('/api/pools/use-image', { pool: pool.name, image: image.name }), `Pool ${pool.name} now clones from ${image.name}`);
  },
  async rollback(pool) {
    const current = nameOf(pool.image?.goldenImage);
    const previous = nameOf(pool.image?.previousGoldenImage);
    const ok = await confirmDialog({
      title: `Roll pool ${pool.name} back to ${previous}?`,
      text: `New clones of pool ${pool.name} come from ${previous} again (it counts as confirmed: it ran before). Sessions under way finish on ${current}, which becomes the image to roll back to.`,
      confirmLabel: 'Roll back',
    });
    if (ok) await this.ctx.act(() => post('/api/pools/rollback-image', { pool: pool.name }), `Pool ${pool.name} clones from ${previous} again`);
  },
};
