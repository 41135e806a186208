/** DOM helpers: elements built with createElement, text set as text nodes; never innerHTML. */

const SVG = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const name in attrs) {
    const value = attrs[name];
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : value);
  }
  if (children.length) el.append(...present(children));
  return el;
}

const present = (children) =>
  children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false);

/** Replace `el`'s children; nulls and falses are left out, arrays flattened. */
export function fill(el, ...children) {
  el.replaceChildren(...present(children));
}

/** An HTML element: h('a', {href: '#/x'}, 'text', otherNode). Strings become text nodes. */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, as `h`. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG, tag), attrs, children);
}

const pad = (n) => String(n).padStart(2, '0');

/** Epoch seconds as local `YYYY-MM-DD HH:MM:SS`. */
export function when(epoch) {
  if (epoch === null || epoch === undefined) return '—';
  const d = new Date(epoch * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Seconds as `0.42s`, `12.3s`, `4m 05s`, `2h 03m`. */
export function duration(seconds) {
  if (!(seconds >= 0)) return '—';
  if (seconds < 10) return `${seconds.toFixed(2)}s`;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m ${pad(Math.floor(seconds % 60))}s`;
  return `${Math.floor(m / 60)}h ${pad(m % 60)}m`;
}

/** The children of a <dl>: [label, value] pairs, those with a null value left out. */
export function terms(pairs) {
  return pairs.filter(([, value]) => value !== null && value !== undefined)
    .flatMap(([label, value]) => [h('dt', {}, label), h('dd', {}, value)]);
}

/** Pretty JSON for a <pre>. */
export const json = (value) => JSON.stringify(value, null, 2);

/** A status badge. */
export function badge(status, attrs = {}) {
  return h('span', { class: 'badge', 'data-status': status, ...attrs }, status);
}

/** A message line: error (role=alert) or note. */
export function message(text, kind = 'error', testid = 'error') {
  const role = kind === 'error' ? 'alert' : null;
  return h('p', { class: kind, role, 'data-testid': testid }, text);
}

export const now = () => Date.now() / 1000;
export const FINISHED = new Set(['completed', 'failed', 'cancelled']);

const LIMIT = 100_000; // characters of JSON shown before cutting

/** A JSON value in a <pre> (cut when huge); an artifact reference as a link that fetches it. */
export function valueView(value, testid, fetchJson) {
  const box = h('div', { class: 'value', 'data-testid': testid });
  if (value === null || value === undefined) {
    box.append(h('span', { class: 'muted' }, 'none'));
  } else if (typeof value?.$artifact === 'string' && value.$artifact.startsWith('/v1/')) {
    const show = async () => {
      try {
        const text = json(await fetchJson(value.$artifact));
        const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
        box.replaceChildren(h('a', { href: url, download: 'artifact.json' }, 'download'),
          h('pre', {}, text.length > LIMIT ? `${text.slice(0, LIMIT)}\n…` : text));
      } catch (error) {
        box.append(message(error.message));
      }
    };
    box.append(h('button', { type: 'button', class: 'link', onclick: show },
      `stored artifact (${value.bytes} bytes): show`));
  } else {
    const text = json(value);
    box.append(h('pre', {}, text.length > LIMIT ? `${text.slice(0, LIMIT)}\n…` : text));
  }
  return box;
}

/** Once the page has painted: a performance mark, and `body[data-view]` for tests. */
export function rendered(signal, view, mark) {
  requestAnimationFrame(() => setTimeout(() => {
    if (signal.aborted) return;
    if (mark) performance.mark(mark);
    document.body.dataset.view = view;
  }));
}

/** Wait `ms`, or less if `signal` aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}
