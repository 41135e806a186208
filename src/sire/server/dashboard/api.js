/** The HTTP API client: the token (kept in localStorage), JSON calls, and event streams. */

const KEY = 'sire.token';

/** Who is signed in: the token text and what GET /v1/me said of it. */
export const session = { token: localStorage.getItem(KEY), me: null };

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let unauthorized = () => {};

/** What to do when a call answers 401 (the app returns to the login page). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function signIn(token, me) {
  session.token = token;
  session.me = me;
  localStorage.setItem(KEY, token);
}

export function signOut() {
  session.token = null;
  session.me = null;
  localStorage.removeItem(KEY);
}

async function sentence(response) {
  try {
    const body = await response.json();
    if (body && typeof body.error === 'string') return body.error;
  } catch { /* not JSON */ }
  return `the server answered ${response.status} ${response.statusText}`.trim();
}

async function send(path, { method = 'GET', body, signal, token = session.token, accept } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (accept) headers.Accept = accept;
  let response;
  try {
    response = await fetch(path, {
      method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, `the server cannot be reached (${error.message})`);
  }
  if (response.ok) return response;
  const text = await sentence(response);
  if (response.status === 401 && token === session.token) unauthorized(text);
  throw new ApiError(response.status, text);
}

/** A JSON call: its parsed answer, or an ApiError carrying the server's sentence. */
export async function api(path, options = {}) {
  return (await send(path, options)).json();
}

/** GET /v1/me with `token`, without leaving the page on 401 (the login form shows why). */
export async function whoIs(token) {
  return (await send('/v1/me', { token })).json();
}

const RANK = { viewer: 0, operator: 1, admin: 2 };

/** Whether the signed-in token has `role` (or a higher one) on `workflowId`. */
export function can(role, workflowId) {
  const grants = session.me ? session.me.grants : [];
  return grants.some((g) => RANK[g.role] >= RANK[role] &&
    (g.workflow_id === null || g.workflow_id === workflowId));
}

/**
 * Read a server-sent event stream with the bearer (EventSource cannot send it):
 * calls `onEvent(type, data)` for each event until the stream closes.
 */
export async function readEvents(path, onEvent, signal) {
  const response = await send(path, { signal, accept: 'text/event-stream' });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, '\n');
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let type = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') type = text;
        else if (field === 'data') data.push(text);
      }
      if (data.length) onEvent(type, JSON.parse(data.join('\n')));
    }
  }
}
