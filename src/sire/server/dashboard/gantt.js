/**
 * The timeline (Gantt) of step attempts, built from `step` events: a `running` event opens
 * an attempt's bar, the key's next completed/failed/retrying/cancelled/skipped closes it;
 * open bars grow with the clock. Only the rows in view are drawn (a run may have thousands).
 */

import { duration, fill, h, now, s } from './dom.js';

const LABEL = 190; // px for the step keys
const ROW = 20;
const AXIS = 22;
const SPARE = 10; // rows drawn beyond the view
const CLOSING = new Set(['completed', 'failed', 'retrying', 'cancelled', 'skipped']);

const cut = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

function tickEvery(span, width) {
  const raw = span / Math.max(1, Math.floor(width / 90));
  const steps = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30,
    60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
  return steps.find((step) => step >= raw) ?? 86400 * Math.ceil(raw / 86400);
}

/** A timeline for an execution created at `origin`; `onSelect(key)` when a bar is clicked. */
export function createGantt(origin, { onSelect } = {}) {
  const wrap = h('div', { class: 'gantt-wrap' });
  const bars = []; // {key, attempt, start, end, status}
  const open = new Map(); // key -> its open bar
  const order = []; // step keys, a row each, in order of first attempt
  const byKey = new Map(); // key -> its bars
  const tips = new Map(); // drawn bar -> its tooltip
  const tip = s('title');
  let selected = null;
  let finished = false;
  let frame = 0;
  let timer = 0;
  let last = 0;
  let top = 0;
  let viewWidth = 900;
  let viewHeight = 400;

  function render() {
    frame = 0;
    last = performance.now();
    const width = Math.max(320, viewWidth - LABEL - 8);
    const clock = now();
    let end = origin + 0.001;
    for (const bar of bars) end = Math.max(end, bar.end ?? (finished ? bar.start : clock));
    const span = end - origin;
    const scale = width / span;
    const height = AXIS + order.length * ROW + 4;
    const first = Math.max(0, Math.floor((top - AXIS) / ROW) - SPARE);
    const stop = Math.min(order.length, Math.ceil((top + viewHeight) / ROW) + SPARE);
    const bottom = Math.min(height, top + viewHeight + SPARE * ROW);
    const grid = s('g', { class: 'axis' });
    const head = s('g', { class: 'axis' },
      s('rect', { x: 0, y: top, width: LABEL + width + 8, height: AXIS, class: 'head' }));
    const every = tickEvery(span, width);
    for (let t = 0; t <= span + 1e-9; t += every) {
      const x = LABEL + t * scale;
      grid.append(s('line', { x1: x, x2: x, y1: top + AXIS - 4, y2: bottom }));
      if (t * scale + 60 < width) {
        head.append(s('text', { x: x + 2, y: top + AXIS - 8 }, `+${duration(t)}`));
      }
    }
    const names = s('g', { class: 'labels' });
    const group = s('g', { class: 'bars' });
    tips.clear();
    for (let row = first; row < stop; row++) {
      const key = order[row];
      const y = AXIS + row * ROW;
      names.append(s('text', {
        x: 4, y: y + 14, 'data-key': key, class: key === selected ? 'selected' : null,
      }, cut(key, 26)));
      for (const bar of byKey.get(key)) {
        const seconds = Math.max(0, (bar.end ?? (finished ? bar.start : clock)) - bar.start);
        const rect = s('rect', {
          class: `attempt${key === selected ? ' selected' : ''}`,
          x: LABEL + (bar.start - origin) * scale, y: y + 3, width: Math.max(2, seconds * scale),
          height: ROW - 6, rx: 2,
          'data-step': key, 'data-attempt': bar.attempt, 'data-status': bar.status,
        });
        tips.set(rect, `${key} attempt ${bar.attempt}: ${bar.status}, ${duration(seconds)}`);
        group.append(rect);
      }
    }
    const svg = s('svg', {
      'data-testid': 'gantt', class: 'gantt', width: LABEL + width + 8, height,
      role: 'img', 'aria-label': 'timeline of step attempts',
    }, tip, grid, group, names, head);
    fill(wrap, svg);
  }

  /** Draw at the next frame (scrolling, resizing). */
  const paint = () => { frame ||= requestAnimationFrame(render); };
  /** Draw soon, at most every 250 ms (a replay of many events draws once, not once a frame). */
  const schedule = () => {
    const wait = Math.max(0, 250 - (performance.now() - last));
    timer ||= setTimeout(() => { timer = 0; paint(); }, wait);
  };

  wrap.addEventListener('scroll', () => { top = wrap.scrollTop; paint(); }, { passive: true });
  new ResizeObserver(([entry]) => {
    viewWidth = entry.contentRect.width;
    viewHeight = entry.contentRect.height || viewHeight;
    paint();
  }).observe(wrap);
  wrap.addEventListener('click', (event) => {
    const key = event.target.closest('[data-step],[data-key]');
    if (key && onSelect) onSelect(key.dataset.step ?? key.dataset.key);
  });
  wrap.addEventListener('mouseover', (event) => {
    tip.textContent = tips.get(event.target) ?? event.target.dataset?.key ?? '';
  });
  const ticker = setInterval(() => { if (open.size && !finished) schedule(); }, 500);

  return {
    element: wrap,
    /** Take one `step` event into account. */
    step({ key, status, at, attempts }) {
      const current = open.get(key);
      if (status === 'running') {
        if (current) {
          current.end = at;
          current.status = 'interrupted';
        }
        const bar = { key, attempt: attempts, start: at, end: null, status };
        if (!byKey.has(key)) {
          order.push(key);
          byKey.set(key, []);
        }
        bars.push(bar);
        byKey.get(key).push(bar);
        open.set(key, bar);
      } else if (current && CLOSING.has(status)) {
        current.end = Math.max(at, current.start);
        current.status = status;
        open.delete(key);
      }
      schedule();
    },
    /** Sharpen the bars with the steps' recorded start and finish times. */
    refine(steps) {
      for (const [key, state] of Object.entries(steps || {})) {
        const mine = byKey.get(key);
        if (!mine) continue;
        const lastBar = mine[mine.length - 1];
        if (mine.length === 1 && state.started_at) lastBar.start = state.started_at;
        if (lastBar.end !== null && state.finished_at) {
          lastBar.end = Math.max(lastBar.start, state.finished_at);
        }
      }
      schedule();
    },
    finish() { finished = true; schedule(); },
    resume() { finished = false; },
    select(key) { selected = key; paint(); },
    stop() {
      clearInterval(ticker);
      clearTimeout(timer);
      cancelAnimationFrame(frame);
    },
  };
}
