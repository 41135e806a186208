/** The workflows pages: the list, and one workflow's graph and the form that runs it. */

import { api, can } from './api.js';
import { drawDag } from './dag.js';
import { fill, h, message, rendered, when } from './dom.js';

export async function renderList(view, _params, { signal }) {
  const { workflows } = await api('/v1/workflows', { signal });
  const cell = (...children) => h('td', { role: 'cell' }, ...children);
  const body = h('tbody', { role: 'rowgroup' }, workflows.map((w) => h('tr', {
    'data-testid': 'workflow-row', 'data-id': w.workflow_id, role: 'row',
  },
  cell(h('a', { href: `#/workflows/${encodeURIComponent(w.workflow_id)}` }, w.workflow_id)),
  cell(String(w.version)), cell(when(w.created_at)), cell(w.created_by ?? '—'))));
  body.addEventListener('click', (event) => {
    const tr = event.target.closest('tr[data-id]');
    if (tr && !event.target.closest('a')) {
      location.hash = `#/workflows/${encodeURIComponent(tr.dataset.id)}`;
    }
  });
  fill(view,
    h('div', { class: 'title' }, h('h1', {}, 'Workflows'),
      h('span', { class: 'muted' }, `${workflows.length} registered`)),
    workflows.length ? null
      : message('No workflows are registered (or none this token may see).', 'note', 'empty'),
    h('table', { class: 'list', 'data-testid': 'workflows', role: 'table' },
      h('thead', { role: 'rowgroup' }, h('tr', { role: 'row' },
        ['Workflow', 'Version', 'Registered', 'By']
          .map((text) => h('th', { scope: 'col', role: 'columnheader' }, text)))),
      body));
  rendered(signal, 'workflows', null);
}

export async function renderOne(view, [id], { signal }) {
  const workflow = await api(`/v1/workflows/${encodeURIComponent(id)}`, { signal });
  const dag = drawDag(workflow.graph);
  fill(view,
    h('div', { class: 'title' }, h('h1', {}, workflow.workflow_id),
      h('span', { class: 'muted' }, `version ${workflow.version}`,
        ` · registered ${when(workflow.created_at)} · ${workflow.steps.length} steps`)),
    can('operator', workflow.workflow_id) ? runForm(workflow, signal) : null,
    h('h2', {}, 'Graph'), h('div', { class: 'dag-wrap' }, dag.svg),
    h('details', {}, h('summary', {}, 'Definition'), h('pre', {}, workflow.definition)));
  dag.ready.then(() => rendered(signal, 'workflow', 'sire:dag-rendered'));
}

/** A control for one input by its schema, and how to read its value (undefined: left out). */
function field(name, spec) {
  const id = `input-${name}`;
  const has = Object.hasOwn(spec, 'default');
  const type = typeof spec.type === 'string' ? spec.type : null;
  let control;
  let read;
  if (Array.isArray(spec.enum)) {
    const shown = (v) => (typeof v === 'string' ? v : JSON.stringify(v));
    const same = (v) => has && JSON.stringify(v) === JSON.stringify(spec.default);
    control = h('select', { id, name, required: !has },
      has ? null : h('option', { value: '' }, 'choose…'),
      spec.enum.map((v, i) => h('option', { value: String(i), selected: same(v) }, shown(v))));
    read = () => (control.value === '' ? undefined : spec.enum[Number(control.value)]);
  } else if (type === 'boolean') {
    control = h('input', { id, name, type: 'checkbox', checked: has && spec.default === true });
    read = () => control.checked;
  } else if (type === 'integer' || type === 'number') {
    control = h('input', {
      id, name, type: 'number', step: type === 'integer' ? '1' : 'any',
      value: has ? String(spec.default) : null, required: !has,
    });
    read = () => (control.value === '' ? undefined : Number(control.value));
  } else if (type === 'string') {
    control = h('input', {
      id, name, type: 'text', value: has ? spec.default : null, required: !has,
    });
    read = () => (control.value === '' && has ? undefined : control.value);
  } else {
    control = h('textarea', {
      id, name, rows: 3, spellcheck: 'false', required: !has, placeholder: 'JSON',
    }, has ? JSON.stringify(spec.default, null, 1) : '');
    read = () => {
      if (control.value.trim() === '') return undefined;
      try {
        return JSON.parse(control.value);
      } catch {
        throw new Error(`input '${name}' is not valid JSON (${type || 'any value'} expected)`);
      }
    };
  }
  const label = h('label', { for: id }, name, has ? null : h('abbr', { title: 'required' }, ' *'),
    h('span', { class: 'muted' }, ` ${type || 'json'}`));
  const hint = spec.description ? h('span', { class: 'hint muted' }, spec.description) : null;
  return { row: h('div', { class: 'field' }, label, control, hint), read };
}

function runForm(workflow, signal) {
  const fields = Object.entries(workflow.inputs || {})
    .map(([name, spec]) => [name, field(name, spec)]);
  const status = h('div', { class: 'status' });
  const button = h('button', { type: 'submit', 'data-testid': 'run' }, 'Run');
  const form = h('form', { class: 'run card', 'data-testid': 'run-form' },
    h('h2', {}, 'Run'),
    fields.length ? fields.map(([, f]) => f.row)
      : h('p', { class: 'muted' }, 'This workflow has no inputs.'),
    h('div', { class: 'actions' }, button), status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    fill(status);
    button.disabled = true;
    try {
      const inputs = {};
      for (const [name, f] of fields) {
        const value = f.read();
        if (value !== undefined) inputs[name] = value;
      }
      const path = `/v1/workflows/${encodeURIComponent(workflow.workflow_id)}/executions`;
      const body = { inputs, version: workflow.version };
      const started = await api(path, { method: 'POST', body, signal });
      location.hash = `#/executions/${encodeURIComponent(started.execution_id)}`;
    } catch (error) {
      if (error.name !== 'AbortError') fill(status, message(error.message, 'error', 'run-error'));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
