/** The login page: an API token pasted in, checked with GET /v1/me, kept in localStorage. */

import { signIn, signOut, whoIs } from './api.js';
import { fill, h, message } from './dom.js';

export function render(view, _params, { flash, next }) {
  signOut();
  const input = h('input', {
    id: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'sire_<id>_<secret>', required: true,
  });
  const status = h('div', { class: 'status' }, flash ? message(flash) : null);
  const button = h('button', { type: 'submit', 'data-testid': 'login' }, 'Log in');
  const form = h('form', { class: 'login card' },
    h('h1', {}, 'Sire'),
    h('label', { for: 'token' }, 'API token'),
    input,
    h('p', { class: 'muted' }, 'Create one with: sire token create --role viewer'),
    button,
    status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    button.disabled = true;
    fill(status);
    try {
      signIn(token, await whoIs(token));
      location.hash = next;
    } catch (error) {
      fill(status, message(error.message));
    } finally {
      button.disabled = false;
    }
  });
  fill(view, form);
  document.body.dataset.view = 'login';
  input.focus();
}
