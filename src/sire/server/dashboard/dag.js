/**
 * The DAG: a layered layout (column = longest path from a root, order within a column by
 * barycenter sweeps) drawn once in SVG; statuses change attributes only, never the layout.
 */

import { s } from './dom.js';

const W = 176; // node width
const H = 42; // node height
const GAP_X = 56;
const GAP_Y = 14;
const PAD = 12;
const CHARS = 22; // characters that fit in a node's label (no text measuring)
const CHUNK = 100; // nodes attached per frame

const cut = (text, n = CHARS) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

/** Columns of step ids: each step one column right of its deepest dependency. */
export function layout(steps) {
  const ids = new Set(steps.map((step) => step.id));
  const parents = new Map(steps.map((st) => [st.id, st.depends.filter((d) => ids.has(d))]));
  const children = new Map(steps.map((st) => [st.id, []]));
  for (const [id, deps] of parents) for (const d of deps) children.get(d).push(id);
  const waiting = new Map([...parents].map(([id, deps]) => [id, deps.length]));
  const column = new Map();
  const queue = steps.filter((st) => waiting.get(st.id) === 0).map((st) => st.id);
  for (const id of queue) column.set(id, 0);
  for (let i = 0; i < queue.length; i++) {
    const id = queue[i];
    for (const child of children.get(id)) {
      column.set(child, Math.max(column.get(child) ?? 0, column.get(id) + 1));
      waiting.set(child, waiting.get(child) - 1);
      if (waiting.get(child) === 0) queue.push(child);
    }
  }
  const columns = [];
  for (const st of steps) {
    const c = column.get(st.id) ?? 0; // (a cycle cannot be registered; be safe anyway)
    (columns[c] ||= []).push(st.id);
  }
  for (let c = 0; c < columns.length; c++) columns[c] ||= [];
  // Barycenter sweeps: down by parents' positions, up by children's; centred rows.
  const y = new Map();
  const place = (col) => col.forEach((id, i) => y.set(id, i - (col.length - 1) / 2));
  columns.forEach(place);
  const sweep = (col, neighbours) => {
    const key = new Map(col.map((id) => {
      const ns = neighbours.get(id);
      return [id, ns.length ? ns.reduce((sum, n) => sum + y.get(n), 0) / ns.length : y.get(id)];
    }));
    col.sort((a, b) => key.get(a) - key.get(b));
    place(col);
  };
  for (let round = 0; round < 3; round++) {
    for (let c = 1; c < columns.length; c++) sweep(columns[c], parents);
    for (let c = columns.length - 2; c >= 0; c--) sweep(columns[c], children);
  }
  for (let c = 1; c < columns.length; c++) sweep(columns[c], parents);
  return { columns, parents };
}

/**
 * The SVG of `steps` ([{id, tool, depends, for_each, conditional}]), and how to change it:
 * `setStatus(id, status)`, `setItems(id, text)`, `select(id)`.
 */
export function drawDag(steps, { onSelect } = {}) {
  const { columns, parents } = layout(steps);
  const rows = Math.max(1, ...columns.map((col) => col.length));
  const width = PAD * 2 + columns.length * W + Math.max(0, columns.length - 1) * GAP_X;
  const height = PAD * 2 + rows * H + (rows - 1) * GAP_Y;
  const at = new Map();
  columns.forEach((col, c) => {
    // Columns are centred in a short graph; in a tall one they start at the top, in view.
    const top = PAD + (rows <= 8 ? ((rows - col.length) * (H + GAP_Y)) / 2 : 0);
    col.forEach((id, i) => at.set(id, [PAD + c * (W + GAP_X), top + i * (H + GAP_Y)]));
  });
  const svg = s('svg', {
    'data-testid': 'dag', class: 'dag', width, height, viewBox: `0 0 ${width} ${height}`,
    role: 'img', 'aria-label': `workflow graph of ${steps.length} steps`,
  });
  const edges = []; // one path of every edge: a path element each costs style and layout at 500
  const nodes = s('g', { class: 'nodes' });
  const byId = new Map();
  for (const step of steps) {
    const [x, y] = at.get(step.id);
    for (const parent of parents.get(step.id)) {
      const [px, py] = at.get(parent);
      const x1 = px + W;
      const y1 = py + H / 2;
      const y2 = y + H / 2;
      const bend = Math.max(GAP_X / 2, (x - x1) / 3);
      edges.push(`M${x1} ${y1}C${x1 + bend} ${y1} ${x - bend} ${y2} ${x} ${y2}`);
    }
    const tool = step.tool.slice(step.tool.lastIndexOf('/') + 1);
    const marks = `${step.for_each ? ' · each' : ''}${step.conditional ? ' · if' : ''}`;
    const items = step.for_each
      ? s('text', { x: x + W - 8, y: y + 34, class: 'items', 'text-anchor': 'end' }) : null;
    const node = s('g', {
      class: 'node', 'data-step': step.id, tabindex: 0, role: 'button', 'aria-label': step.id,
    },
      s('rect', { x, y, width: W, height: H, rx: 6 }),
      s('text', { x: x + 8, y: y + 17, class: 'label' }, cut(step.id)),
      s('text', { x: x + 8, y: y + 34, class: 'tool' }, cut(tool + marks, 18)),
      items);
    byId.set(step.id, { node, items });
  }
  svg.append(s('path', { class: 'edges', d: edges.join('') }), nodes);
  // Nodes are attached a chunk per frame, left columns first: no one task lays out 500.
  const order = columns.flat();
  const ready = new Promise((resolve) => {
    let done = 0;
    const attach = () => {
      nodes.append(...order.slice(done, done + CHUNK).map((id) => byId.get(id).node));
      done += CHUNK;
      if (done < order.length) requestAnimationFrame(() => setTimeout(attach));
      else resolve();
    };
    attach();
  });
  const pick = (event) => {
    const node = event.target.closest('g.node');
    if (node && onSelect) onSelect(node.dataset.step);
  };
  svg.addEventListener('click', pick);
  // One tooltip for the node under the pointer (a <title> per node costs layout at 500).
  const tip = s('title');
  svg.prepend(tip);
  const tools = new Map(steps.map((step) => [step.id, step.tool]));
  svg.addEventListener('mouseover', (event) => {
    const node = event.target.closest('g.node');
    tip.textContent = node ? `${node.dataset.step}\n${tools.get(node.dataset.step)}` : '';
  });
  svg.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      pick(event);
    }
  });
  let selected = null;
  return {
    svg,
    /** Resolves once every node is in the SVG. */
    ready,
    setStatus(id, status) {
      const found = byId.get(id);
      if (found && found.node.dataset.status !== status) found.node.dataset.status = status;
    },
    setItems(id, text) {
      const found = byId.get(id);
      if (found && found.items) found.items.textContent = text;
    },
    select(id) {
      if (selected) selected.classList.remove('selected');
      selected = byId.get(id)?.node ?? null;
      if (selected) selected.classList.add('selected');
    },
  };
}
