/**
 * The execution page: header, the DAG coloured by live step state, the timeline of
 * attempts, and a step panel; kept live by the execution's event stream.
 */

import { api, can, readEvents } from './api.js';
import { drawDag } from './dag.js';
import {
  FINISHED, badge, duration, fill, h, json, message, now, rendered, sleep, terms, valueView, when,
} from './dom.js';
import { createGantt } from './gantt.js';

export async function render(view, [id], { signal }) {
  const base = `/v1/executions/${encodeURIComponent(id)}`;
  const [first, graph] = await Promise.all([
    api(base, { signal }), api(`${base}/graph`, { signal })]);
  let execution = first;
  let plan = null;
  let selected = null; // the step key the panel shows
  let lastSeq = 0;
  let ended = false;
  let refreshTimer = 0;
  const logs = new Map(); // step key -> its `log` events
  const items = new Map(); // for_each step id -> Map(item key -> status)
  const tools = new Map(graph.steps.map((step) => [step.id, step.tool]));

  const status = badge(execution.status, { 'data-testid': 'execution-status' });
  const actions = h('span', { class: 'actions' });
  const note = h('div', { class: 'status' });
  const facts = h('dl', { class: 'facts' });
  const io = h('div', { class: 'io' });
  const panel = h('aside', { class: 'panel card', 'data-testid': 'step-panel', hidden: true });
  const dag = drawDag(graph.steps, { onSelect: openStep });
  const gantt = createGantt(execution.created_at, { onSelect: openStep });
  const workflow = h('a', { href: `#/workflows/${encodeURIComponent(execution.workflow_id)}` },
    execution.workflow_id);
  fill(view,
    h('div', { class: 'title' }, h('h1', {}, workflow, ' ', h('code', {}, execution.execution_id)),
      status, actions),
    note, facts, io,
    h('div', { class: 'split' },
      h('div', { class: 'graphs' },
        h('h2', {}, 'Graph'), h('div', { class: 'dag-wrap' }, dag.svg),
        h('h2', {}, 'Timeline'), gantt.element),
      panel));

  function itemStatus(key, state) {
    const parent = key.slice(0, key.indexOf('/'));
    if (!items.has(parent)) items.set(parent, new Map());
    const mine = items.get(parent);
    mine.set(key, state);
    let done = 0;
    for (const value of mine.values()) if (value === 'completed') done += 1;
    dag.setItems(parent, `${done}/${mine.size}`);
  }

  function showStatus(value) {
    status.textContent = value;
    status.dataset.status = value;
  }

  function show(next) {
    const changed = json(next.outputs) !== json(execution.outputs) ||
      next.status !== execution.status;
    execution = next;
    showStatus(execution.status);
    if (FINISHED.has(execution.status)) note.querySelector('.note')?.remove();
    const end = FINISHED.has(execution.status) ? execution.updated_at : now();
    fill(facts, terms([
      ['Created', when(execution.created_at)],
      ['Updated', when(execution.updated_at)],
      ['Duration', duration(end - execution.created_at)],
      ['Error', execution.error ? h('span', { class: 'error' }, execution.error) : null],
    ]));
    if (changed || !io.firstChild) {
      fill(io,
        h('details', { open: true }, h('summary', {}, 'Inputs'),
          valueView(execution.inputs, 'inputs', api)),
        h('details', { open: true }, h('summary', {}, 'Outputs'),
          valueView(execution.outputs, 'outputs', api)));
    }
    const operator = can('operator', execution.workflow_id);
    fill(actions,
      operator && !FINISHED.has(execution.status)
        ? h('button', { type: 'button', 'data-testid': 'cancel', onclick: () => act('cancel') },
          'Cancel') : null,
      operator && execution.status === 'failed'
        ? h('button', { type: 'button', 'data-testid': 'resume', onclick: () => act('resume') },
          'Resume') : null);
  }

  function showSteps(steps) {
    for (const step of graph.steps) if (!steps?.[step.id]) dag.setStatus(step.id, 'pending');
    for (const [key, state] of Object.entries(steps || {})) {
      if (key.includes('/')) itemStatus(key, state.status);
      else dag.setStatus(key, state.status);
    }
  }

  async function act(verb) {
    fill(note);
    try {
      show(await api(`${base}/${verb}`, { method: 'POST', signal }));
      if (verb === 'cancel' && !FINISHED.has(execution.status)) {
        note.append(message('Cancel requested: the agent stops it at its next heartbeat.', 'note'));
      }
      if (verb === 'resume' && ended) {
        ended = false;
        gantt.resume();
        follow();
      }
    } catch (error) {
      if (error.name !== 'AbortError') note.append(message(error.message));
    }
  }

  async function refresh() {
    refreshTimer = 0;
    try {
      const [next, nextPlan] = await Promise.all([
        api(base, { signal }), selected ? api(`${base}/plan`, { signal }) : plan]);
      plan = nextPlan;
      show(next);
      gantt.refine(next.steps);
      if (ended) showSteps(next.steps);
      if (selected) showPanel();
    } catch (error) {
      if (error.name !== 'AbortError') fill(note, message(error.message));
    }
  }

  const refreshSoon = () => { refreshTimer ||= setTimeout(refresh, 250); };

  function onEvent(type, data) {
    if (typeof data.seq === 'number') lastSeq = Math.max(lastSeq, data.seq);
    const mine = selected !== null &&
      (data.key === selected || Boolean(data.key?.startsWith(`${selected}/`)));
    if (type === 'step') {
      if (data.key.includes('/')) itemStatus(data.key, data.status);
      else dag.setStatus(data.key, data.status);
      gantt.step(data);
      if (mine) refreshSoon();
    } else if (type === 'execution') {
      showStatus(data.status);
      refreshSoon();
    } else if (type === 'log') {
      if (!logs.has(data.key)) logs.set(data.key, []);
      logs.get(data.key).push(data);
      const list = panel.querySelector('[data-testid=step-logs]');
      if (mine && list) {
        list.append(logLine(data));
        panel.querySelector('.no-logs')?.remove();
      }
    } else if (type === 'end') {
      ended = true;
      gantt.finish();
      refresh();
    }
  }

  async function follow() {
    while (!signal.aborted && !ended) {
      try {
        await readEvents(`${base}/events?after=${lastSeq}&follow=true`, onEvent, signal);
      } catch (error) {
        if (signal.aborted || (error.status >= 400 && error.status < 500)) return;
      }
      if (!ended) await sleep(1000, signal); // dropped: read on from the last seq seen
    }
  }

  function logLine(data) {
    return h('li', { 'data-level': data.status },
      h('span', { class: 'muted' }, `${when(data.at)} `), `${data.status} `,
      data.logger ? `[${data.logger}] ` : '', data.message ?? '',
      data.attempt ? h('span', { class: 'muted' }, ` (attempt ${data.attempt})`) : '');
  }

  async function openStep(key) {
    selected = key;
    dag.select(key.split('/')[0]);
    gantt.select(key);
    panel.hidden = false;
    showPanel();
    clearTimeout(refreshTimer);
    await refresh();
  }

  /** What the plan says step `key` is called with (undefined while unknown), what it waits on,
   * and whether these are the parameters of each of its items. */
  function paramsOf(key) {
    const [stepId, index] = key.split('/');
    const planned = plan?.steps?.find((step) => step.id === stepId);
    if (!planned) return [undefined, [], false];
    const waits = Object.entries(planned.pending || {})
      .map(([path, refs]) => `${path} (${refs.join(', ')})`);
    if (index !== undefined) return [planned.items[Number(index)], waits, false];
    const each = planned.for_each !== null;
    return [each ? planned.items : planned.params, waits, each];
  }

  function showPanel() {
    const key = selected;
    const stepId = key.split('/')[0];
    const state = execution.steps?.[key] ?? { status: 'pending', attempts: 0 };
    const [params, waits, each] = paramsOf(key);
    const lines = [...logs].filter(([k]) => k === key || k.startsWith(`${key}/`))
      .flatMap(([, mine]) => mine).sort((a, b) => a.seq - b.seq);
    const itemStates = key === stepId ? [...(items.get(stepId) || [])] : [];
    const end = state.finished_at ?? now();
    const none = (text = 'none') => h('span', { class: 'muted' }, text);
    fill(panel,
      h('div', { class: 'title' }, h('h2', {}, key),
        h('button', { type: 'button', class: 'link', 'aria-label': 'close', onclick: close },
          '×')),
      h('dl', { class: 'facts' }, terms([
        ['Status', badge(state.status)],
        ['Tool', h('code', {}, tools.get(stepId) ?? '?')],
        ['Attempts', String(state.attempts)],
        ['Started', when(state.started_at)],
        ['Finished', when(state.finished_at)],
        ['Duration', state.started_at ? duration(end - state.started_at) : null],
        ['Next attempt', state.next_attempt ? when(state.next_attempt) : null],
      ])),
      h('h3', {}, each ? 'Parameters of each item' : 'Parameters'),
      h('div', { 'data-testid': 'step-params', class: 'value' },
        params === undefined ? none(plan ? 'not known' : 'loading…') : h('pre', {}, json(params)),
        waits.length ? h('p', { class: 'muted' }, `Waiting on: ${waits.join('; ')}`) : null),
      h('h3', {}, 'Output'), valueView(state.output, 'step-output', api),
      h('h3', {}, 'Error'),
      h('div', { 'data-testid': 'step-error', class: 'value' },
        state.error ? h('pre', { class: 'error' }, state.error) : none()),
      itemStates.length ? [
        h('h3', {}, `Items (${itemStates.length})`),
        h('ul', { class: 'items' }, itemStates.map(([item, st]) => h('li', {},
          h('button', { type: 'button', class: 'link', onclick: () => openStep(item) }, item),
          ' ', badge(st)))),
      ] : null,
      h('h3', {}, 'Logs'),
      h('ol', { 'data-testid': 'step-logs', class: 'logs' }, lines.map(logLine)),
      lines.length ? null
        : h('p', { class: 'muted no-logs' }, 'No log lines (tools that log send them here).'));
  }

  function close() {
    selected = null;
    panel.hidden = true;
    dag.select(null);
    gantt.select(null);
  }

  show(execution);
  showSteps(execution.steps);
  dag.ready.then(() => rendered(signal, 'execution', 'sire:dag-rendered'));
  follow();
  return () => {
    gantt.stop();
    clearTimeout(refreshTimer);
  };
}
