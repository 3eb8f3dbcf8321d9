// Small helpers for building the page without a framework.

/**
 * h('button', { class: 'x', onclick: fn }, 'text', child…): an element with
 * attributes (on* are listeners; false/undefined/null are left out) and children
 * (strings become text, never HTML).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** The same for SVG elements. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs ?? {})) if (v !== undefined && v !== null && v !== false) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

/**
 * Replaces the children of `root`, keeping the keyboard focus on the element
 * with the same data-key if there is one (live updates must not steal focus).
 */
export function replaceContent(root, ...children) {
  const focused = document.activeElement;
  const key = focused && root.contains(focused) ? focused.getAttribute('data-key') : null;
  root.replaceChildren();
  append(root, children);
  if (key) root.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
}

const pad = (n) => String(n).padStart(2, '0');

/** A local date and time: 2026-11-20 08:15:02. */
export function clockTime(ms) {
  if (ms === undefined || ms === null) return '–';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A span of time for people: 42 s, 3 min 05 s, 2 h 07 min. */
export function span(ms) {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return '–';
  const secs = Math.max(0, Math.round(ms / 1000));
  if (secs < 60) return `${secs} s`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ${pad(secs % 60)} s`;
  return `${Math.floor(secs / 3600)} h ${pad(Math.floor((secs % 3600) / 60))} min`;
}

/** Bytes for people: 1.5 GiB. */
export function bytes(n) {
  if (n === undefined || n === null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

/** A table of data: column headings, then its rows (<tr> elements). */
export function dataTable(attrs, headings, rows) {
  return h('table', { class: 'data', ...attrs }, h('thead', {}, h('tr', {}, ...headings.map((c) => h('th', { scope: 'col' }, c)))), h('tbody', {}, ...rows));
}
