import { h } from './dom.js';

/**
 * A modal confirmation (the native <dialog>: focus is trapped and Escape
 * cancels). `fields` are extra inputs built by the caller; `ready(form)`
 * says whether the confirm button may be pressed (e.g. the typed word is
 * right). Resolves with the form when confirmed, null when cancelled.
 */
export function confirmDialog({ title, text, confirmLabel, danger = false, fields = [], ready = () => true }) {
  return new Promise((resolve) => {
    const confirm = h('button', { type: 'submit', class: danger ? 'danger' : 'primary', value: 'confirm' }, confirmLabel);
    const cancel = h('button', { type: 'button', value: 'cancel' }, 'Cancel');
    const form = h('form', { method: 'dialog' }, h('h2', { id: 'dialog-title' }, title), h('p', {}, text), ...fields, h('div', { class: 'buttons' }, cancel, confirm));
    const dialog = h('dialog', { 'aria-labelledby': 'dialog-title', class: danger ? 'danger' : '' }, form);
    const update = () => {
      confirm.disabled = !ready(form);
    };
    form.addEventListener('input', update);
    form.addEventListener('change', update);
    update();
    let result = null;
    form.addEventListener('submit', (e) => {
      if (!ready(form)) {
        e.preventDefault();
        return;
      }
      result = form;
    });
    cancel.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
    (form.querySelector('input') ?? cancel).focus();
  });
}
