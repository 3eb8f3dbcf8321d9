// Golden images: what each pool clones from, read-only for now.
import { get } from './api.js';
import { bytes, dataTable, h, replaceContent } from './dom.js';

export const imagesPage = {
  title: 'Golden images',
  async enter(main) {
    const box = h('div', { id: 'images' });
    replaceContent(
      main,
      h('h1', {}, 'Golden images'),
      h('p', {}, 'Each pool clones its VMs from one golden image. A pool whose image has a problem makes no new clones until it is fixed.'),
      box,
      h(
        'section',
        { class: 'placeholder', id: 'images-manage', 'aria-labelledby': 'images-manage-title' },
        h('h2', { id: 'images-manage-title' }, 'Import, switch and roll back'),
        h('p', {}, 'Not here yet. Importing a new image, switching a pool to it and rolling back will appear in this place.'),
      ),
    );
    try {
      const { images } = await get('/api/images');
      if (images.length === 0) return replaceContent(box, h('p', { class: 'muted' }, 'No pool is configured.'));
      replaceContent(
        box,
        dataTable(
          { id: 'images-table' },
          ['Pool', 'Image file', 'Format', 'Guest disk', 'On the host', 'State'],
          images.map((i) =>
            h('tr', { 'data-pool': i.pool }, h('td', {}, i.pool), h('td', {}, h('code', {}, i.path)), h('td', {}, i.format ?? '–'), h('td', {}, bytes(i.virtualSize)), h('td', {}, bytes(i.actualSize)), h('td', { class: i.problem ? 'bad' : 'ok' }, i.problem ?? 'usable')),
          ),
        ),
      );
    } catch (e) {
      replaceContent(box, h('p', { class: 'form-error', role: 'alert' }, `${e.message} (${e.code})`));
    }
  },
};
