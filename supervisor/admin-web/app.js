// The admin page: login or first-use set-up, then one page at a time (by the
// URL's #fragment), all fed live by the supervisor's event stream.
import { ApiError, get, post, setCsrf, whenLoggedOut } from './api.js';
import { h, replaceContent } from './dom.js';
import { overviewPage } from './overview.js';
import { sessionsPage } from './sessions.js';
import { plotsPage } from './plots.js';
import { whitelistPage } from './whitelist.js';
import { imagesPage } from './images.js';
import { settingsPage } from './settings.js';

const PAGES = { overview: overviewPage, sessions: sessionsPage, plots: plotsPage, whitelist: whitelistPage, images: imagesPage, settings: settingsPage };

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const live = document.getElementById('live');
const logoutButton = document.getElementById('logout');
const alertBox = document.getElementById('alert');

/** What every page shares: the latest overview, the server's clock, messages. */
const ctx = {
  overview: undefined,
  /** Server time minus this browser's: durations are counted on the server's clock. */
  offset: 0,
  now: () => Date.now() + ctx.offset,
  /** Shows an error (or, with kind 'ok', a confirmation) at the top of the page. */
  notify(message, kind = 'error') {
    alertBox.textContent = message;
    alertBox.className = `alert ${kind}`;
    alertBox.hidden = false;
    clearTimeout(ctx.notifyTimer);
    if (kind === 'ok') ctx.notifyTimer = setTimeout(() => (alertBox.hidden = true), 6000);
  },
  /** Runs an action; its error, if any, is shown with the server's code and message. */
  async act(work, done) {
    try {
      const value = await work();
      if (done) ctx.notify(done, 'ok');
      return value;
    } catch (e) {
      ctx.notify(e instanceof ApiError ? `${e.message} (${e.code})` : String(e));
      return undefined;
    }
  },
};

let page;
let events;
let signedIn = false;

function showPage() {
  const name = location.hash.replace(/^#/, '') || 'overview';
  const next = PAGES[name] ?? overviewPage;
  page?.leave?.();
  page = next;
  for (const a of nav.querySelectorAll('a')) {
    if (a.getAttribute('href') === `#${name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${page.title} · Tabula admin`;
  alertBox.hidden = true;
  replaceContent(main);
  page.enter(main, ctx);
}

function listen() {
  events?.close();
  events = new EventSource('/api/events');
  events.addEventListener('open', () => (live.textContent = '● live'));
  events.addEventListener('error', async () => {
    live.textContent = '○ reconnecting…';
    // A closed stream is either the network (the browser retries by itself) or the login gone.
    if (events.readyState === EventSource.CLOSED) {
      const s = await get('/api/session').catch(() => undefined);
      if (s && !s.loggedIn) loggedOut();
      else setTimeout(listen, 3000);
    }
  });
  events.addEventListener('overview', (e) => {
    const ov = JSON.parse(e.data);
    ctx.offset = ov.now - Date.now();
    ctx.overview = ov;
    page?.overview?.(ov);
  });
  for (const name of ['session-started', 'session-ended']) {
    events.addEventListener(name, (e) => page?.session?.(name, JSON.parse(e.data)));
  }
}

function loggedIn(csrf) {
  signedIn = true;
  setCsrf(csrf);
  nav.hidden = false;
  logoutButton.hidden = false;
  listen();
  window.addEventListener('hashchange', showPage);
  showPage();
}

function loggedOut() {
  if (!signedIn) return;
  signedIn = false;
  setCsrf('');
  events?.close();
  events = undefined;
  page?.leave?.();
  page = undefined;
  window.removeEventListener('hashchange', showPage);
  nav.hidden = true;
  logoutButton.hidden = true;
  live.textContent = '';
  start();
}

/** The first visit sets the password (typed twice); later ones log in. */
function loginForm(session) {
  const setup = !session.passwordSet;
  const error = h('p', { class: 'form-error', role: 'alert', id: 'login-error' });
  const password = h('input', { type: 'password', id: 'password', name: 'password', required: true, autocomplete: setup ? 'new-password' : 'current-password', minlength: setup ? session.minPasswordLength : undefined, 'aria-describedby': 'login-error' });
  const repeat = setup ? h('input', { type: 'password', id: 'repeat', name: 'repeat', required: true, autocomplete: 'new-password', 'aria-describedby': 'login-error' }) : undefined;
  const form = h(
    'form',
    { class: 'login', novalidate: true },
    h('h1', {}, setup ? 'Set the admin password' : 'Log in'),
    setup ? h('p', {}, `This is the first visit: choose the password that will protect this page (at least ${session.minPasswordLength} characters). It is stored hashed on the server; to reset it later, see docs/admin-web.md.`) : null,
    h('label', { for: 'password' }, setup ? 'New password' : 'Admin password'),
    password,
    setup ? [h('label', { for: 'repeat' }, 'The same password again'), repeat] : null,
    error,
    h('button', { type: 'submit', class: 'primary' }, setup ? 'Set password and log in' : 'Log in'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    try {
      const r = setup ? await post('/api/setup', { password: password.value, repeat: repeat.value }) : await post('/api/login', { password: password.value });
      loggedIn(r.csrf);
    } catch (err) {
      error.textContent = err instanceof ApiError ? `${err.message} (${err.code})` : String(err);
      password.focus();
    }
  });
  replaceContent(main, form);
  password.focus();
}

async function start() {
  let session;
  try {
    session = await get('/api/session');
  } catch (e) {
    replaceContent(main, h('p', { class: 'form-error', role: 'alert' }, `Cannot reach the supervisor: ${e.message}`));
    return;
  }
  if (session.loggedIn) loggedIn(session.csrf);
  else loginForm(session);
}

logoutButton.addEventListener('click', async () => {
  await post('/api/logout').catch(() => undefined);
  loggedOut();
});
whenLoggedOut(loggedOut);
start();
