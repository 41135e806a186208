/**
 * The executions list: filters (workflow, status, time) kept in the URL, re-fetched every
 * 2 s while the page is visible, rows updated in place.
 */

import { api } from './api.js';
import { FINISHED, duration, fill, h, message, now, rendered, when } from './dom.js';

const STATUSES = ['pending', 'running', 'retrying', 'completed', 'failed', 'cancelled'];
const SINCE = { '1h': 3600, '24h': 86400, '7d': 7 * 86400, all: 0 };
const EVERY = 2000;

function select(testid, options, value) {
  return h('select', { 'data-testid': testid },
    options.map(([v, text]) => h('option', { value: v, selected: v === value }, text)));
}

export async function render(view, _params, { signal, query }) {
  const statusSelect = select('filter-status', [['', 'any'],
    ['active', 'unfinished'], ...STATUSES.map((st) => [st, st])], query.get('status') || '');
  const workflowInput = h('input', {
    'data-testid': 'filter-workflow', list: 'workflow-ids', placeholder: 'any workflow',
    value: query.get('workflow') || '', spellcheck: 'false',
  });
  const workflowList = h('datalist', { id: 'workflow-ids' });
  const sinceSelect = select('filter-since', [['1h', 'last hour'], ['24h', 'last 24 h'],
    ['7d', 'last 7 days'], ['all', 'any time']], query.get('since') || 'all');
  const status = h('div', { class: 'status' });
  const count = h('span', { class: 'muted' });
  const body = h('tbody', { role: 'rowgroup' });
  const table = h('table', { 'data-testid': 'executions', class: 'list', role: 'table' },
    h('thead', { role: 'rowgroup' }, h('tr', { role: 'row' },
      ['Execution', 'Workflow', 'Status', 'Created', 'Duration']
        .map((text) => h('th', { scope: 'col', role: 'columnheader' }, text)))),
    body);
  fill(view,
    h('div', { class: 'title' }, h('h1', {}, 'Executions'), count),
    h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() },
      h('label', {}, 'Workflow', workflowInput), workflowList,
      h('label', {}, 'Status', statusSelect), h('label', {}, 'Created', sinceSelect)),
    status, table);

  const rows = new Map(); // execution id -> {tr, cells, status, updated}
  let generation = 0;
  let timer = 0;
  let first = true;

  function url() {
    const params = new URLSearchParams({ limit: '1000' });
    const chosen = statusSelect.value;
    for (const st of chosen === 'active' ? ['pending', 'running', 'retrying'] : [chosen]) {
      if (st) params.append('status', st);
    }
    const workflow = workflowInput.value.trim();
    if (workflow) params.set('workflow_id', workflow);
    const since = SINCE[sinceSelect.value];
    if (since) params.set('since', String(Math.floor(now() - since)));
    return `/v1/executions?${params}`;
  }

  function remember() {
    const kept = new URLSearchParams();
    if (statusSelect.value) kept.set('status', statusSelect.value);
    if (workflowInput.value.trim()) kept.set('workflow', workflowInput.value.trim());
    if (sinceSelect.value !== 'all') kept.set('since', sinceSelect.value);
    const text = kept.toString();
    history.replaceState(null, '', `#/executions${text ? `?${text}` : ''}`);
  }

  function row(execution) {
    const link = h('a', { href: `#/executions/${encodeURIComponent(execution.execution_id)}` },
      execution.execution_id);
    const cells = {
      workflow: h('td', { role: 'cell' }, execution.workflow_id),
      status: h('span', { class: 'badge' }),
      created: h('td', { role: 'cell' }, when(execution.created_at)),
      duration: h('td', { role: 'cell', class: 'num' }),
    };
    const tr = h('tr', {
      'data-testid': 'execution-row', 'data-id': execution.execution_id, role: 'row',
    }, h('td', { role: 'cell', class: 'mono' }, link), cells.workflow,
    h('td', { role: 'cell' }, cells.status), cells.created, cells.duration);
    return { tr, cells, status: null, updated: null };
  }

  function update(executions) {
    const t = now();
    let previous = null;
    const seen = new Set();
    for (const execution of executions) {
      seen.add(execution.execution_id);
      let entry = rows.get(execution.execution_id);
      if (!entry) rows.set(execution.execution_id, (entry = row(execution)));
      if (entry.status !== execution.status) {
        entry.status = execution.status;
        entry.tr.dataset.status = entry.cells.status.dataset.status = execution.status;
        entry.cells.status.textContent = execution.status;
      }
      const finished = FINISHED.has(execution.status);
      if (!finished || entry.updated !== execution.updated_at) {
        entry.updated = execution.updated_at;
        const text = duration((finished ? execution.updated_at : t) - execution.created_at);
        if (entry.cells.duration.textContent !== text) entry.cells.duration.textContent = text;
      }
      const want = previous ? previous.nextSibling : body.firstChild;
      if (want !== entry.tr) body.insertBefore(entry.tr, want);
      previous = entry.tr;
    }
    for (const [id, entry] of rows) {
      if (!seen.has(id)) {
        entry.tr.remove();
        rows.delete(id);
      }
    }
    count.textContent = executions.length === 1000
      ? 'the newest 1000' : `${executions.length} shown`;
    if (!executions.length && !body.firstChild) {
      fill(status, message('No executions match these filters.', 'note', 'empty'));
    } else if (executions.length) {
      fill(status);
    }
  }

  async function refresh() {
    clearTimeout(timer);
    timer = 0;
    const mine = ++generation;
    try {
      const answer = await api(url(), { signal });
      if (mine !== generation || signal.aborted) return;
      update(answer.executions);
      if (first) {
        first = false;
        rendered(signal, 'executions', 'sire:list-rendered');
      }
    } catch (error) {
      if (error.name === 'AbortError' || mine !== generation) return;
      fill(status, message(error.message));
    }
    if (!signal.aborted && mine === generation && !document.hidden) {
      timer = setTimeout(refresh, EVERY);
    }
  }

  const changed = () => {
    remember();
    refresh();
  };
  statusSelect.addEventListener('change', changed);
  sinceSelect.addEventListener('change', changed);
  let typing = 0;
  workflowInput.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(changed, 300);
  });
  body.addEventListener('click', (event) => {
    const tr = event.target.closest('tr[data-id]');
    if (tr && !event.target.closest('a')) {
      location.hash = `#/executions/${encodeURIComponent(tr.dataset.id)}`;
    }
  });
  const visible = () => { if (!document.hidden && !timer) refresh(); };
  document.addEventListener('visibilitychange', visible);

  api('/v1/workflows', { signal }).then((answer) => {
    fill(workflowList, ...answer.workflows.map((w) => h('option', { value: w.workflow_id })));
  }).catch(() => {});
  await refresh();
  return () => {
    generation += 1;
    clearTimeout(timer);
    clearTimeout(typing);
    document.removeEventListener('visibilitychange', visible);
  };
}
