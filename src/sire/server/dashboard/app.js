/** The dashboard's entry: hash routes to pages, the session, and the 401 way back to login. */

import { onUnauthorized, session, signOut, whoIs } from './api.js';
import { message } from './dom.js';
import * as execution from './execution.js';
import * as executions from './executions.js';
import * as login from './login.js';
import * as workflows from './workflows.js';

const ROUTES = [
  [/^\/login$/, login.render],
  [/^\/executions$/, executions.render],
  [/^\/executions\/([^/]+)$/, execution.render],
  [/^\/workflows$/, workflows.renderList],
  [/^\/workflows\/([^/]+)$/, workflows.renderOne],
];

const main = document.getElementById('main');
let current = null; // {controller, cleanup} of the page shown
let flash = null; // why the last page went back to login
let next = null; // where to go once logged in

/** `#/path?query` as [path, URLSearchParams]. */
function where() {
  const hash = location.hash.replace(/^#/, '') || '/executions';
  const [path, query = ''] = hash.split('?');
  return [path, new URLSearchParams(query)];
}

async function route() {
  if (current) {
    current.controller.abort();
    current.cleanup?.();
    current = null;
  }
  let [path, query] = where();
  if (!session.token && path !== '/login') {
    toLogin(null);
    return;
  }
  if (session.token && !session.me && path !== '/login') {
    try {
      session.me = await whoIs(session.token);
    } catch (error) {
      if (error.status !== 401) main.replaceChildren(message(error.message));
      return; // a 401 went back to login already
    }
  }
  const found = ROUTES.map(([re, page]) => [path.match(re), page]).find(([m]) => m);
  if (!found) {
    location.hash = '#/executions';
    return;
  }
  const [match, page] = found;
  const header = document.getElementById('top');
  header.hidden = !session.me || path === '/login';
  document.getElementById('who').textContent = session.me ? session.me.name : '';
  for (const link of header.querySelectorAll('nav a')) {
    link.classList.toggle('active', path.startsWith(link.getAttribute('href').slice(1)));
  }
  const controller = new AbortController();
  const view = document.createElement('section');
  main.replaceChildren(view);
  current = { controller, cleanup: null };
  const context = { signal: controller.signal, query, flash, next: next || '#/executions' };
  flash = null;
  if (path !== '/login') next = null;
  const params = match.slice(1).map(decodeURIComponent);
  try {
    const cleanup = await page(view, params, context);
    if (current && current.controller === controller) current.cleanup = cleanup;
    else cleanup?.();
  } catch (error) {
    if (error.name === 'AbortError' || controller.signal.aborted) return;
    view.replaceChildren(message(error.message));
  }
}

/** Show the login page, saying why (`sentence`), and come back here after. */
function toLogin(sentence, remember = true) {
  signOut();
  flash = sentence;
  next = remember && !location.hash.startsWith('#/login') ? location.hash || null : null;
  if (location.hash === '#/login') route();
  else location.hash = '#/login';
}

onUnauthorized(toLogin);

document.getElementById('logout').addEventListener('click', (event) => {
  event.preventDefault();
  toLogin(null, false);
});

window.addEventListener('hashchange', route);
route();
