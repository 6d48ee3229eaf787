// Reports: audit exports (start one for a territory's team or a rep and a period, follow its
// progress, download its files, verify a file against the export it came from, list past ones),
// the monthly assessment bulletin (reps and child territories ranked, with the change from the
// month before; a rep finds their own row marked) and the outlets that need a visit (the team's
// reminders; a rep's own). Every role; the server bounds each caller to their scope (a rep exports
// their own data and reads their own territory's bulletin).
import { t, register } from '../../common/i18n.js';
import { esc } from '../../common/text.js';
import { registerView } from '../views.js';
import { api, ctx as shared } from '../context.js';
import { showErrors } from './form.js';
import {
  change, defaultPeriod, figure, localDay, monthOf, periodProblem, progressOf, ranked, rankText, size,
} from './reports.helpers.js';
import { REPORTS_STRINGS } from './reports.strings.js';

register(REPORTS_STRINGS);

const FORMATS = ['xlsx', 'csv', 'geojson', 'pdf'];
const REASONS = ['problem', 'never_visited', 'overdue', 'due'];
/** How often a running export is asked for its progress, ms. */
const POLL_MS = 1000;

const view = {
  el: null,
  territories: [],
  reps: [],
  exports: [],
  /** The export followed: the last one started or opened. */
  job: null,
  verification: null,
  form: null,
  month: null,
  team: null,
  bulletin: null,
  bulletinError: null,
  reminders: null,
  remindersError: null,
  exportsError: null,
};
/** What the browser test reads: the export followed, the bulletin and the reminders shown. */
globalThis.fieldvisitReports = view;

const me = (ctx) => ctx.me?.user ?? null;
const isRep = (ctx) => me(ctx)?.role === 'rep';

function territoryLabel(id) {
  const tr = view.territories.find((x) => x.id === id);
  return tr ? `${tr.name} (${tr.code})` : `#${id}`;
}

function repLabel(id, ctx) {
  if (me(ctx)?.id === id) return me(ctx).name;
  const r = view.reps.find((x) => x.id === id);
  return r ? `${r.name} (${r.login})` : `#${id}`;
}

function scopeLabel(scope, ctx) {
  return scope.kind === 'rep' ? `${t('rpt_rep')} ${repLabel(scope.id, ctx)}` : `${t('rpt_territory')} ${territoryLabel(scope.id)}`;
}

/** The territory exports and reminders default to: the caller's, else the first top one. */
function defaultTeam(ctx) {
  return me(ctx)?.territory_id ?? view.territories.find((x) => x.parent_id == null)?.id ?? view.territories[0]?.id ?? null;
}

/** The team a rep's bulletin ranks them in: the territory above theirs (reps sit in grids), else theirs. */
function repTeam(ctx) {
  const own = me(ctx)?.territory_id;
  return view.territories.find((x) => x.id === own)?.parent_id ?? own ?? null;
}

async function loadLists(ctx) {
  const [territories, reps] = await Promise.all([
    api.all('/territories').catch(() => []),
    isRep(ctx) ? [] : api.all('/users').then((us) => us.filter((u) => u.role === 'rep' && u.active)).catch(() => []),
  ]);
  Object.assign(view, { territories, reps });
}

async function loadExports() {
  try {
    view.exports = (await api.request('/exports?limit=20')).items ?? [];
    view.exportsError = null;
  } catch (err) {
    view.exports = [];
    view.exportsError = err.detail || err.message;
  }
}

async function loadBulletin() {
  view.bulletin = null;
  view.bulletinError = null;
  if (view.team == null) return;
  try {
    view.bulletin = await api.request(`/territories/${view.team}/assessment?month=${view.month}`);
  } catch (err) {
    view.bulletinError = err.detail || err.message;
  }
}

async function loadReminders(ctx) {
  view.reminders = null;
  view.remindersError = null;
  try {
    const path = isRep(ctx) ? `/reps/${me(ctx).id}/reminders?horizon_days=7&limit=50`
      : `/reminders?horizon_days=7&limit=50${view.team == null ? '' : `&territory_id=${view.team}`}`;
    view.reminders = await api.request(path);
  } catch (err) {
    view.remindersError = err.detail || err.message;
  }
}

function exportForm(ctx) {
  const f = view.form;
  const rep = isRep(ctx);
  const territoryOptions = view.territories.map((tr) => `<option value="${tr.id}" ${f.kind === 'territory' && f.id === tr.id ? 'selected' : ''}>${esc(tr.name)} (${esc(tr.code)})</option>`).join('');
  const repOptions = view.reps.map((r) => `<option value="${r.id}" ${f.kind === 'rep' && f.id === r.id ? 'selected' : ''}>${esc(r.name)} (${esc(r.login)})</option>`).join('');
  return `<form id="export-form" data-testid="export-form">
    ${rep ? `<p>${esc(t('rpt_own_data'))}</p>` : `
    <label class="field"><span>${esc(t('rpt_scope'))}</span><select name="kind">
      <option value="territory" ${f.kind === 'territory' ? 'selected' : ''}>${esc(t('rpt_territory'))}</option>
      <option value="rep" ${f.kind === 'rep' ? 'selected' : ''}>${esc(t('rpt_rep'))}</option></select></label>
    <label class="field" ${f.kind === 'territory' ? '' : 'hidden'}><span>${esc(t('rpt_territory'))}</span><select name="territory">${territoryOptions}</select></label>
    <label class="field" ${f.kind === 'rep' ? '' : 'hidden'}><span>${esc(t('rpt_rep'))}</span><select name="rep">${repOptions}</select></label>
    <small class="field-error" data-error-for="scope"></small>`}
    <div class="row">
      <label class="field"><span>${esc(t('rpt_from'))}</span><input name="from" type="date" value="${esc(f.from)}" required>
        <small class="field-error" data-error-for="from"></small></label>
      <label class="field"><span>${esc(t('rpt_to'))}</span><input name="to" type="date" value="${esc(f.to)}" required>
        <small class="field-error" data-error-for="to"></small></label>
    </div>
    <fieldset><legend>${esc(t('rpt_formats'))}</legend>
      ${FORMATS.map((x) => `<label class="check"><input type="checkbox" name="formats" value="${x}" ${f.formats.includes(x) ? 'checked' : ''}> ${esc(t(`rpt_format_${x}`))}</label>`).join('')}
      <small class="field-error" data-error-for="formats"></small></fieldset>
    <button type="submit">${esc(t('rpt_start'))}</button>
    <p class="field-error" data-error-for="" role="alert"></p>
  </form>`;
}

function jobPanel(ctx) {
  const job = view.job;
  if (!job) return '';
  const { pct, done, failed } = progressOf(job);
  const files = done ? job.manifest?.files ?? [] : [];
  const v = view.verification;
  return `<div class="job" data-testid="export-job" data-status="${esc(job.status)}" data-export="${job.id}">
    <h3>${esc(t('rpt_export'))} #${job.id} · ${esc(scopeLabel(job.params.scope, ctx))} · ${esc(job.params.from)} – ${esc(job.params.to)}</h3>
    <p role="status"><progress max="100" value="${pct}" data-testid="export-progress"></progress>
      <span>${esc(t(`rpt_status_${job.status}`))} ${pct}%</span></p>
    ${failed ? `<p class="error" role="alert">${esc(job.error ?? '')}</p>` : ''}
    ${files.length ? `<ul class="files" data-testid="export-files">${files.map((f) => `<li>
      <button type="button" data-download="${esc(f.name)}">${esc(t('rpt_download'))} ${esc(f.name)}</button>
      <small>${esc(size(f.bytes))} · SHA-256 <code>${esc(f.sha256.slice(0, 16))}…</code></small></li>`).join('')}</ul>` : ''}
    ${done ? `<form id="verify-form" data-testid="verify-form">
      <label class="field"><span>${esc(t('rpt_verify_file'))}</span><input name="file" type="file" required></label>
      <button type="submit">${esc(t('rpt_verify'))}</button><p class="field-error" data-error-for="" role="alert"></p>
      ${v ? `<div data-testid="verify-result" data-matches="${v.file_matches}" data-changed="${v.data_changed}">
        <p class="${v.file_matches ? 'ok' : 'bad'}">${esc(t(v.file_matches ? 'rpt_file_matches' : 'rpt_file_differs'))}</p>
        <p class="${v.data_changed ? 'bad' : 'ok'}">${esc(t(v.data_changed == null ? 'rpt_data_unknown' : v.data_changed ? 'rpt_data_changed' : 'rpt_data_unchanged'))}${v.changed_parts?.length ? `: ${esc(v.changed_parts.join(', '))}` : ''}</p></div>` : ''}
    </form>` : ''}
  </div>`;
}

function exportsTable(ctx) {
  if (view.exportsError) return `<p class="error">${esc(view.exportsError)}</p>`;
  if (!view.exports.length) return `<p>${esc(t('rpt_no_exports'))}</p>`;
  return `<div class="scroll"><table data-testid="exports"><thead><tr><th>#</th><th>${esc(t('rpt_scope'))}</th><th>${esc(t('rpt_period'))}</th>
    <th>${esc(t('rpt_status'))}</th><th></th></tr></thead><tbody>${view.exports.map((x) => `<tr data-export="${x.id}">
    <td>${x.id}</td><td>${esc(scopeLabel(x.params.scope, ctx))}</td><td>${esc(x.params.from)} – ${esc(x.params.to)}</td>
    <td>${esc(t(`rpt_status_${x.status}`))}</td><td><button type="button" data-open-export="${x.id}">${esc(t('rpt_open'))}</button></td></tr>`).join('')}
    </tbody></table></div>`;
}

function changeCell(s) {
  const c = change(s?.change_pp);
  return `<td class="mom ${c.trend}" data-trend="${c.trend}">${c.arrow ? `<span aria-hidden="true">${c.arrow}</span> ` : ''}${esc(c.text)}</td>`;
}

function standingCells(s) {
  return `<td>${esc(figure(s?.value))}</td><td>${esc(figure(s?.previous))}</td>${changeCell(s)}`;
}

function bulletinTables(ctx) {
  if (view.bulletinError) return `<p class="error" role="alert">${esc(view.bulletinError)}</p>`;
  const b = view.bulletin;
  if (!b) return view.team == null ? `<p>${esc(t('rpt_no_team'))}</p>` : `<p>${esc(t('rpt_loading'))}</p>`;
  const mine = me(ctx)?.id;
  const head = (first) => `<tr><th>${esc(t('rpt_rank'))}</th><th>${esc(first)}</th><th>${esc(t('rpt_this_month'))}</th>
    <th>${esc(t('rpt_last_month'))}</th><th>${esc(t('rpt_change'))}</th></tr>`;
  const repTable = (key, title) => {
    const ranks = b.reps.map((r) => r[key].rank);
    const rows = ranked(b.reps, key).map((r) => `<tr data-rep="${r.rep_id}" ${r.rep_id === mine ? 'class="me" aria-current="true"' : ''}>
      <td>${esc(rankText(r[key].rank, ranks))}</td><td>${esc(r.name)} <small>${esc(r.login)}</small>${r.rep_id === mine ? ` <strong>${esc(t('rpt_you'))}</strong>` : ''}</td>
      ${standingCells(r[key])}</tr>`).join('');
    return `<h3>${esc(title)}</h3><div class="scroll"><table data-testid="bulletin-${key}"><thead>${head(t('rpt_rep'))}</thead>
      <tbody>${rows || `<tr><td colspan="5">${esc(t('rpt_none'))}</td></tr>`}</tbody></table></div>`;
  };
  const territoryTable = (key, title) => {
    const ranks = b.territories.map((x) => x[key].rank);
    const rows = ranked(b.territories, key, (x) => x.code).map((x) => `<tr data-territory="${x.territory_id}">
      <td>${esc(rankText(x[key].rank, ranks))}</td><td>${esc(x.name)} <small>${esc(x.code)}</small></td>${standingCells(x[key])}</tr>`).join('');
    return `<h3>${esc(title)}</h3><div class="scroll"><table data-testid="bulletin-territories-${key}"><thead>${head(t('rpt_territory'))}</thead>
      <tbody>${rows}</tbody></table></div>`;
  };
  return `<p><small>${esc(b.from)} – ${esc(b.to)} · ${esc(t('rpt_compared_with'))} ${esc(b.previous_from)} – ${esc(b.previous_to)}</small></p>
    ${repTable('plan_compliance', t('rpt_plan_compliance'))}
    ${repTable('verified_rate', t('rpt_verified_rate'))}
    ${b.territories.length ? `${territoryTable('plan_compliance', t('rpt_territories_plan'))}
      ${territoryTable('coverage', t('rpt_territories_coverage'))}
      ${territoryTable('frequency_compliance', t('rpt_territories_frequency'))}` : ''}`;
}

function remindersList() {
  if (view.remindersError) return `<p class="error" role="alert">${esc(view.remindersError)}</p>`;
  const r = view.reminders;
  if (!r) return `<p>${esc(t('rpt_loading'))}</p>`;
  if (!r.outlets.length) return `<p data-testid="reminders-empty">${esc(t('rpt_no_reminders'))}</p>`;
  return `<p>${esc(t('rpt_reminders_total'))}: ${r.total} · ${esc(r.date)}</p>
    <ol class="reminders" data-testid="reminders">${r.outlets.map((o) => `<li data-outlet="${o.outlet_id}">
      <strong>${esc(o.name)}</strong> <small>${esc(o.code)} · ${esc(o.tier)}</small><br>
      ${o.reasons.filter((x) => REASONS.includes(x)).map((x) => `<span class="tag ${x}">${esc(t(`rpt_reason_${x}`))}</span>`).join(' ')}
      <small>${o.last_valid_visit ? `${esc(t('rpt_last_visit'))} ${esc(o.last_valid_visit)} (${o.days_since} ${esc(t('rpt_days'))})` : esc(t('rpt_never_visited_yet'))}
      ${o.due_on ? ` · ${esc(t('rpt_due_on'))} ${esc(o.due_on)}` : ''}</small></li>`).join('')}</ol>`;
}

function teamPicker() {
  if (!view.territories.length) return '';
  return `<label class="field"><span>${esc(t('rpt_team'))}</span><select id="report-team" data-testid="report-team">
    ${view.territories.map((tr) => `<option value="${tr.id}" ${tr.id === view.team ? 'selected' : ''}>${esc(tr.name)} (${esc(tr.code)})</option>`).join('')}</select></label>`;
}

function draw(ctx) {
  view.el.innerHTML = `
    <h1>${esc(t('view_reports'))}</h1>
    <section data-testid="exports-section"><h2>${esc(t('rpt_exports'))}</h2>
      ${exportForm(ctx)}
      <div id="export-job">${jobPanel(ctx)}</div>
      <h3>${esc(t('rpt_past_exports'))}</h3><div id="export-list">${exportsTable(ctx)}</div>
    </section>
    <section data-testid="bulletin-section"><h2>${esc(t('rpt_bulletin'))}</h2>
      <div class="row">${isRep(ctx) ? '' : teamPicker()}
        <label class="field"><span>${esc(t('rpt_month'))}</span><input id="report-month" type="month" value="${esc(view.month)}" data-testid="report-month"></label></div>
      <div id="bulletin" data-testid="bulletin">${bulletinTables(ctx)}</div>
    </section>
    <section data-testid="reminders-section"><h2>${esc(t(isRep(ctx) ? 'rpt_my_reminders' : 'rpt_team_reminders'))}</h2>
      <div id="reminders-list">${remindersList()}</div>
    </section>`;
  wire(ctx);
}

function redrawJob(ctx) {
  const box = view.el.querySelector('#export-job');
  box.innerHTML = jobPanel(ctx);
  wireJob(ctx);
}

function wire(ctx) {
  const form = view.el.querySelector('#export-form');
  form.addEventListener('change', (e) => {
    if (e.target.name === 'kind') {
      readForm(form, ctx);
      view.form.id = view.form.kind === 'rep' ? view.reps[0]?.id ?? null : defaultTeam(ctx);
      draw(ctx);
    }
  });
  form.addEventListener('submit', (e) => startExport(e, ctx));
  wireJob(ctx);
  wireList(ctx);
  view.el.querySelector('#report-month').addEventListener('change', async (e) => {
    if (!/^\d{4}-\d{2}$/.test(e.target.value)) return;
    view.month = e.target.value;
    await loadBulletin();
    view.el.querySelector('#bulletin').innerHTML = bulletinTables(ctx);
  });
  view.el.querySelector('#report-team')?.addEventListener('change', async (e) => {
    view.team = Number(e.target.value);
    view.el.querySelector('#bulletin').innerHTML = `<p>${esc(t('rpt_loading'))}</p>`;
    await Promise.all([loadBulletin(), loadReminders(ctx)]);
    view.el.querySelector('#bulletin').innerHTML = bulletinTables(ctx);
    view.el.querySelector('#reminders-list').innerHTML = remindersList();
  });
}

function wireList(ctx) {
  for (const b of view.el.querySelectorAll('[data-open-export]')) {
    b.addEventListener('click', () => follow(view.exports.find((x) => x.id === Number(b.dataset.openExport)), ctx));
  }
}

function wireJob(ctx) {
  for (const b of view.el.querySelectorAll('[data-download]')) b.addEventListener('click', () => download(view.job.id, b.dataset.download, b));
  view.el.querySelector('#verify-form')?.addEventListener('submit', (e) => verify(e, ctx));
}

function readForm(form, ctx) {
  const data = new FormData(form);
  const kind = isRep(ctx) ? 'rep' : data.get('kind');
  const id = isRep(ctx) ? me(ctx).id : Number(data.get(kind === 'rep' ? 'rep' : 'territory')) || null;
  view.form = { kind, id, from: data.get('from'), to: data.get('to'), formats: data.getAll('formats') };
  return view.form;
}

async function startExport(e, ctx) {
  e.preventDefault();
  const form = e.target;
  showErrors(form, null);
  const f = readForm(form, ctx);
  const problem = periodProblem(f.from, f.to);
  const local = problem ? { to: t(problem) } : !f.formats.length ? { formats: t('rpt_pick_format') } : f.id == null ? { scope: t('rpt_pick_scope') } : null;
  if (local) {
    for (const [k, v] of Object.entries(local)) form.querySelector(`[data-error-for=${k}]`).textContent = v;
    return;
  }
  try {
    const job = await api.request('/exports', { method: 'POST', json: { scope: { kind: f.kind, id: f.id }, from: f.from, to: f.to, formats: f.formats } });
    await follow(job, ctx);
  } catch (err) {
    showErrors(form, err);
  }
}

/** Shows export `job` and asks for its progress until it is done or failed. */
async function follow(job, ctx) {
  if (!job) return;
  view.job = job;
  view.verification = null;
  redrawJob(ctx);
  while (view.job?.id === job.id && !['done', 'failed'].includes(view.job.status)) {
    await new Promise((resolve) => { setTimeout(resolve, POLL_MS); });
    let next;
    try {
      next = await api.request(`/exports/${job.id}`);
    } catch (err) {
      view.el.querySelector('#export-job').insertAdjacentHTML('beforeend', `<p class="error" role="alert">${esc(err.detail || err.message)}</p>`);
      return;
    }
    if (view.job?.id !== job.id) return;
    view.job = next;
    redrawJob(ctx);
  }
  await loadExports();
  view.el.querySelector('#export-list').innerHTML = exportsTable(ctx);
  wireList(ctx);
}

/** Downloads one file of export `id` (with the token, so through fetch and a blob). */
async function download(id, name, button) {
  button.disabled = true;
  try {
    const res = await api.send(`/exports/${id}/files/${encodeURIComponent(name)}`);
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (err) {
    button.insertAdjacentHTML('afterend', `<span class="error" role="alert">${esc(err.message)}</span>`);
  } finally {
    button.disabled = false;
  }
}

/** Sends the chosen file to be checked against the export followed. */
async function verify(e, ctx) {
  e.preventDefault();
  const form = e.target;
  showErrors(form, null);
  const file = form.querySelector('[name=file]').files[0];
  if (!file) return;
  try {
    view.verification = await api.request(`/exports/verify?export_id=${view.job.id}`, {
      method: 'POST', body: file, headers: { 'Content-Type': 'application/octet-stream' },
    });
    redrawJob(ctx);
  } catch (err) {
    showErrors(form, err);
  }
}

registerView({
  id: 'reports',
  label: 'view_reports',
  mount(el) {
    view.el = el;
  },
  async show(el, ctx) {
    await loadLists(ctx);
    const today = localDay();
    if (!view.form) {
      const { from, to } = defaultPeriod(today);
      view.form = isRep(ctx) ? { kind: 'rep', id: me(ctx)?.id, from, to, formats: [...FORMATS] }
        : { kind: 'territory', id: defaultTeam(ctx), from, to, formats: [...FORMATS] };
    }
    view.month ??= monthOf(today);
    view.team ??= isRep(ctx) ? repTeam(ctx) : defaultTeam(ctx);
    await Promise.all([loadExports(), loadBulletin(), loadReminders(ctx)]);
    draw(ctx);
  },
  translate() {
    if (view.el && view.form) draw(shared);
  },
});
