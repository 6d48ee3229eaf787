// Settings: the tier policies (visits per cycle, radius, minimum dwell; add a tier), the visit
// checklists (an edit saves a new version) and the org's working hours and raw-position retention.
// Admins change them; managers, supervisors and auditors see the tier policies and checklists as
// they are (the ping settings are admins' only, as the API says).
import { t, register } from '../../common/i18n.js';
import { esc } from '../../common/text.js';
import { registerView } from '../views.js';
import { api, ctx as shared } from '../context.js';
import { field, intervalsText, parseWeek, showErrors, WEEKDAYS } from './form.js';
import { ITEM_TYPES, itemFields, itemOf, itemsFromEntries, pingsChange, pingsShown } from './settings-model.js';
import { SETTINGS_STRINGS } from './settings.strings.js';

register(SETTINGS_STRINGS);

const view = { el: null, tiers: [], checklists: [], pings: null, draft: null, shownChecklist: null, notes: {} };
/** What the browser test reads: the tiers, checklists and ping settings last loaded. */
globalThis.fieldvisitSettings = view;

const isAdmin = (ctx) => ctx.me?.user?.role === 'admin';
const TIER_FIELDS = [
  ['required_visits', 'set_required_visits'], ['cycle_days', 'set_cycle_days'],
  ['min_dwell_s', 'set_min_dwell'], ['default_radius_m', 'set_radius'],
];

async function load(ctx) {
  const [tiers, checklists, pings] = await Promise.all([
    api.request('/tier-policies'),
    api.request('/checklists'),
    isAdmin(ctx) ? api.request('/settings/pings') : null,
  ]);
  Object.assign(view, { tiers, checklists, pings });
}

function draw(ctx) {
  const admin = isAdmin(ctx);
  view.el.innerHTML = `
    <h1>${esc(t('view_settings'))}</h1>
    ${admin ? '' : `<p class="notice" data-testid="settings-read-only">${esc(t('set_read_only'))}</p>`}
    <section data-testid="tiers"><h2>${esc(t('set_tiers'))}</h2><p><small>${esc(t('set_tiers_hint'))}</small></p>
      ${admin ? tierForms() : tierTable()}</section>
    <section data-testid="checklists"><h2>${esc(t('set_checklists'))}</h2>${checklistList(admin)}
      <div id="checklist-editor">${admin && view.draft ? editor() : ''}${!view.draft && view.shownChecklist ? checklistItems() : ''}</div></section>
    ${admin && view.pings ? `<section data-testid="pings"><h2>${esc(t('set_pings'))}</h2>${pingsForm()}</section>` : ''}`;
  wire(ctx);
}

// Tier policies.

function tierTable() {
  return `<div class="scroll"><table data-testid="tier-table"><thead><tr><th>${esc(t('set_tier'))}</th>
    ${TIER_FIELDS.map(([, label]) => `<th>${esc(t(label))}</th>`).join('')}</tr></thead><tbody>
    ${view.tiers.map((p) => `<tr data-tier="${esc(p.tier)}"><td>${esc(p.tier)}</td>
      ${TIER_FIELDS.map(([k]) => `<td>${esc(String(p[k]))}</td>`).join('')}</tr>`).join('')}</tbody></table></div>`;
}

function tierFields(policy) {
  return `<div class="row">${TIER_FIELDS.map(([k, label]) => field({ name: k, label, type: 'number', value: policy?.[k] ?? '', attrs: 'step="any"' })).join('')}</div>`;
}

function tierForms() {
  const forms = view.tiers.map((p) => `
    <form class="tier" data-tier="${esc(p.tier)}" data-testid="tier-${esc(p.tier)}" novalidate>
      <h3>${esc(p.tier)}</h3>${tierFields(p)}
      <button type="submit">${esc(t('save'))}</button> <span role="status" data-testid="tier-saved">${esc(view.notes[`tier-${p.tier}`] ?? '')}</span>
      <p class="field-error" data-error-for="" role="alert"></p></form>`).join('');
  return `${forms}
    <details id="new-tier"><summary>${esc(t('set_add_tier'))}</summary>
      <form id="new-tier-form" data-testid="new-tier-form">
        ${field({ name: 'tier', label: 'set_tier', attrs: 'required pattern="[A-Za-z0-9_+\\-]{1,16}" maxlength="16" autocomplete="off" autocapitalize="off"' })}
        ${tierFields({ required_visits: 1, cycle_days: 28, min_dwell_s: 300, default_radius_m: 100 })}
        <button type="submit">${esc(t('set_add_tier'))}</button>
        <p class="field-error" data-error-for="" role="alert"></p></form></details>`;
}

/** The policy a tier form holds; numbers as typed (the server names a wrong one). */
function tierBody(form) {
  const data = new FormData(form);
  const num = (k) => {
    const s = String(data.get(k) ?? '').trim();
    return s !== '' && Number.isFinite(Number(s)) ? Number(s) : (s || null);
  };
  return Object.fromEntries(TIER_FIELDS.map(([k]) => [k, num(k)]));
}

/** Clears what an earlier save said (a new answer is awaited). */
function clearNotes(form) {
  view.notes = {};
  for (const el of form.querySelectorAll('[role=status]')) el.textContent = '';
}

async function saveTier(form, tier, ctx) {
  showErrors(form, null);
  clearNotes(form);
  // Every value is needed (the server's answer to a missing one names no field): said beside it.
  const body = tierBody(form);
  const missing = TIER_FIELDS.filter(([k]) => body[k] == null);
  for (const [k] of missing) form.querySelector(`[data-error-for=${k}]`).textContent = t('set_number_needed');
  if (missing.length) return;
  try {
    await api.request(`/tier-policies/${encodeURIComponent(tier)}`, { method: 'PUT', json: body });
  } catch (err) {
    showErrors(form, err);
    return;
  }
  view.notes = { [`tier-${tier}`]: t('saved') };
  view.tiers = await api.request('/tier-policies');
  draw(ctx);
}

// Checklists.

function checklistList(admin) {
  const rows = view.checklists.map((c) => `
    <tr data-checklist="${c.id}" data-testid="checklist-${esc(c.name)}"><td>${esc(c.name)}</td>
      <td data-testid="checklist-version">${c.version}</td><td>${Array.isArray(c.items) ? c.items.length : 0}</td>
      <td><button type="button" data-checklist-open="${c.id}">${esc(t(admin ? 'set_edit' : 'set_show'))}</button></td></tr>`).join('');
  return `<div class="scroll"><table data-testid="checklist-table"><thead><tr><th>${esc(t('set_checklist_name'))}</th>
    <th>${esc(t('set_version'))}</th><th>${esc(t('set_items'))}</th><th></th></tr></thead><tbody>${rows}</tbody></table></div>
    ${admin ? `<p><button type="button" id="new-checklist">${esc(t('set_new_checklist'))}</button>
      <span role="status" data-testid="checklist-saved">${esc(view.notes.checklist ?? '')}</span></p>` : ''}`;
}

/** A read-only checklist's items. */
function checklistItems() {
  const c = view.shownChecklist;
  const detail = (it) => ITEM_TYPES[it.type]?.filter((k) => it[k] != null && it[k] !== false)
    .map((k) => `${k}: ${Array.isArray(it[k]) ? it[k].join(', ') : it[k]}`).join('; ') ?? '';
  return `<h3>${esc(c.name)} · ${esc(t('set_version'))} ${c.version}</h3><div class="scroll"><table data-testid="checklist-items"><thead><tr>
    <th>${esc(t('set_key'))}</th><th>${esc(t('set_label'))}</th><th>${esc(t('set_type'))}</th><th>${esc(t('set_required'))}</th><th></th></tr></thead><tbody>
    ${(c.items ?? []).map((it) => `<tr><td>${esc(it.key)}</td><td>${esc(it.label)}</td><td>${esc(t(`type_${it.type}`))}</td>
      <td>${it.required ? esc(t('set_yes')) : ''}</td><td><small>${esc(detail(it))}</small></td></tr>`).join('')}</tbody></table></div>`;
}

function check(name, label, checked) {
  return `<label class="check"><input type="checkbox" name="${name}" ${checked ? 'checked' : ''}> ${esc(t(label))}</label>
    <small class="field-error" data-error-for="${name}" role="alert"></small>`;
}

function itemEditor(f, i) {
  const n = (k) => `items[${i}].${k}`;
  const typed = {
    yes_no: () => `<label class="field"><span>${esc(t('set_expect'))}</span><select name="${n('expect')}">
      ${[['', 'set_expect_any'], ['true', 'set_yes'], ['false', 'set_no']].map(([v, l]) => `<option value="${v}" ${f.expect === v ? 'selected' : ''}>${esc(t(l))}</option>`).join('')}
      </select><small class="field-error" data-error-for="${n('expect')}" role="alert"></small></label>`,
    number: () => `${check(n('integer'), 'set_integer', f.integer)}<div class="row">
      ${[['min', 'set_min'], ['max', 'set_max'], ['expect_min', 'set_expect_min'], ['expect_max', 'set_expect_max']]
        .map(([k, l]) => field({ name: n(k), label: l, type: 'number', value: f[k], attrs: 'step="any"' })).join('')}</div>`,
    choice: () => `${field({ name: n('choices'), label: 'set_choices', value: f.choices })}${check(n('multiple'), 'set_multiple', f.multiple)}
      ${field({ name: n('expect_in'), label: 'set_expect_in', value: f.expect_in })}`,
    text: () => field({ name: n('max_length'), label: 'set_max_length', type: 'number', value: f.max_length }),
  };
  return `<fieldset class="item" data-item="${i}" data-testid="item-${i}"><legend>${esc(t('set_item'))} ${i + 1}</legend>
    <small class="field-error" data-error-for="items[${i}]" role="alert"></small>
    <div class="row">${field({ name: n('key'), label: 'set_key', value: f.key, attrs: 'autocomplete="off" autocapitalize="off"' })}
      ${field({ name: n('label'), label: 'set_label', value: f.label })}
      <label class="field"><span>${esc(t('set_type'))}</span><select name="${n('type')}" data-type-of="${i}">
        ${Object.keys(ITEM_TYPES).map((ty) => `<option value="${ty}" ${f.type === ty ? 'selected' : ''}>${esc(t(`type_${ty}`))}</option>`).join('')}
      </select><small class="field-error" data-error-for="${n('type')}" role="alert"></small></label>
      ${field({ name: n('outlet_attribute'), label: 'set_outlet_attribute', value: f.outlet_attribute, attrs: 'autocomplete="off" autocapitalize="off"' })}</div>
    ${check(n('required'), 'set_required', f.required)}
    ${(typed[f.type] ?? typed.text)()}
    <button type="button" data-remove-item="${i}">${esc(t('set_remove_item'))}</button></fieldset>`;
}

function editor() {
  const d = view.draft;
  return `<form id="checklist-form" data-testid="checklist-form" novalidate>
    <h3>${d.version ? `${esc(d.name)} · ${esc(t('set_version'))} ${d.version}` : esc(t('set_new_checklist'))}</h3>
    ${d.version ? `<input type="hidden" name="name" value="${esc(d.name)}"><small class="field-error" data-error-for="name" role="alert"></small>`
    : field({ name: 'name', label: 'set_checklist_name', value: d.name })}
    <p><small>${esc(t('set_versions_hint'))}</small></p>
    <small class="field-error" data-error-for="items" role="alert"></small>
    ${d.items.map(itemEditor).join('')}
    <p><button type="button" id="add-item">${esc(t('set_add_item'))}</button></p>
    <button type="submit">${esc(t('set_save_version'))}</button> <button type="button" id="close-checklist">${esc(t('set_close'))}</button>
    <p class="field-error" data-error-for="" role="alert"></p></form>`;
}

/** The editor's fields back into the draft (before a redraw, so nothing typed is lost). */
function syncDraft() {
  const form = view.el.querySelector('#checklist-form');
  if (!form || !view.draft) return;
  const data = new FormData(form);
  view.draft.name = String(data.get('name') ?? view.draft.name);
  view.draft.items = itemsFromEntries(data.entries(), view.draft.items.length);
}

function openChecklist(id, ctx) {
  const c = view.checklists.find((x) => x.id === id);
  if (!c) return;
  view.notes = {};
  if (isAdmin(ctx)) view.draft = { name: c.name, version: c.version, items: (c.items ?? []).map(itemFields) };
  else view.shownChecklist = c;
  draw(ctx);
  view.el.querySelector('#checklist-editor').scrollIntoView?.({ block: 'nearest' });
}

async function saveChecklist(form, ctx) {
  syncDraft();
  showErrors(form, null);
  clearNotes(view.el);
  const body = { name: view.draft.name, items: view.draft.items.map(itemOf) };
  let saved;
  try {
    saved = await api.request('/checklists', { method: 'POST', json: body });
  } catch (err) {
    showErrors(form, err);
    return;
  }
  view.checklists = await api.request('/checklists');
  view.draft = null;
  view.notes = { checklist: `${t('set_saved_version')} ${saved.version}: ${saved.name}` };
  draw(ctx);
}

// Working hours and retention.

function pingsForm() {
  const p = view.pings;
  const shown = pingsShown(p);
  const hours = shown.working_hours ?? {};
  const onOff = (b) => esc(t(b ? 'set_on' : 'set_off'));
  return `<form id="pings-form" data-testid="pings-form" novalidate>
    <p><small>${esc(t('set_empty_default'))}</small></p>
    ${field({ name: 'pings.retention_days', label: 'set_retention_days', type: 'number', value: shown.retention_days })}
    ${check('pings.working_hours_only', 'set_working_hours_only', shown.working_hours_only)}
    ${field({ name: 'pings.utc_offset_minutes', label: 'set_utc_offset', type: 'number', value: shown.utc_offset_minutes, attrs: 'placeholder="0"' })}
    <fieldset><legend>${esc(t('set_working_hours'))}</legend><small>${esc(t('set_org_hours_hint'))}</small>
      <small class="field-error" data-error-for="pings.working_hours" role="alert"></small>
      ${WEEKDAYS.map((d) => field({ name: `pings.working_hours.${d}`, label: `day_${d}`, value: intervalsText(hours[d]), attrs: 'placeholder="09:00-18:00"' })).join('')}</fieldset>
    ${check('pings.blur_home', 'set_blur_home', shown.blur_home)}
    ${field({ name: 'pings.home_radius_m', label: 'set_home_radius', type: 'number', value: shown.home_radius_m })}
    <small class="field-error" data-error-for="pings" role="alert"></small>
    <button type="submit">${esc(t('save'))}</button> <span role="status" data-testid="pings-saved">${esc(view.notes.pings ?? '')}</span>
    <p class="field-error" data-error-for="" role="alert"></p>
  </form>
  <h3>${esc(t('set_in_force'))}</h3>
  <dl class="in-force" data-testid="pings-in-force">
    <dt>${esc(t('set_retention_days'))}</dt><dd data-testid="in-force-retention_days">${p.retention_days}</dd>
    <dt>${esc(t('set_working_hours_only'))}</dt><dd data-testid="in-force-working_hours_only">${onOff(p.working_hours_only)}</dd>
    <dt>${esc(t('set_blur_home'))}</dt><dd data-testid="in-force-blur_home">${onOff(p.blur_home)}</dd>
    <dt>${esc(t('set_home_radius'))}</dt><dd data-testid="in-force-home_radius_m">${p.home_radius_m}</dd>
    <dt>${esc(t('set_pings_kept_from'))}</dt><dd data-testid="in-force-pings_kept_from">${esc(p.pings_kept_from ?? t('set_all_kept'))}</dd>
  </dl>`;
}

async function savePings(form, ctx) {
  showErrors(form, null);
  clearNotes(form);
  const data = new FormData(form);
  const week = parseWeek(Object.fromEntries(WEEKDAYS.map((d) => [d, data.get(`pings.working_hours.${d}`)])));
  if (week.errors) {
    for (const [d, reason] of Object.entries(week.errors)) form.querySelector(`[data-error-for="pings.working_hours.${d}"]`).textContent = reason;
    return;
  }
  const now = {
    retention_days: data.get('pings.retention_days'), utc_offset_minutes: data.get('pings.utc_offset_minutes'),
    home_radius_m: data.get('pings.home_radius_m'), working_hours_only: data.get('pings.working_hours_only') === 'on',
    blur_home: data.get('pings.blur_home') === 'on', working_hours: week.hours,
  };
  try {
    view.pings = await api.request('/settings/pings', { method: 'PUT', json: pingsChange(pingsShown(view.pings), now) });
  } catch (err) {
    showErrors(form, err);
    return;
  }
  view.notes = { pings: t('saved') };
  draw(ctx);
}

function wire(ctx) {
  const el = view.el;
  for (const form of el.querySelectorAll('form.tier')) {
    form.addEventListener('submit', (e) => { e.preventDefault(); saveTier(form, form.dataset.tier, ctx); });
  }
  el.querySelector('#new-tier-form')?.addEventListener('submit', (e) => {
    e.preventDefault();
    const form = e.target;
    saveTier(form, String(new FormData(form).get('tier') ?? '').trim(), ctx);
  });
  for (const b of el.querySelectorAll('[data-checklist-open]')) b.addEventListener('click', () => openChecklist(Number(b.dataset.checklistOpen), ctx));
  el.querySelector('#new-checklist')?.addEventListener('click', () => {
    view.notes = {};
    view.draft = { name: '', version: null, items: [itemFields({ type: 'yes_no', required: true })] };
    draw(ctx);
  });
  const form = el.querySelector('#checklist-form');
  if (form) {
    form.addEventListener('submit', (e) => { e.preventDefault(); saveChecklist(form, ctx); });
    for (const s of form.querySelectorAll('[data-type-of]')) s.addEventListener('change', () => { syncDraft(); draw(ctx); });
    form.querySelector('#add-item').addEventListener('click', () => {
      syncDraft();
      view.draft.items.push(itemFields({ type: 'yes_no' }));
      draw(ctx);
    });
    for (const b of form.querySelectorAll('[data-remove-item]')) {
      b.addEventListener('click', () => {
        syncDraft();
        view.draft.items.splice(Number(b.dataset.removeItem), 1);
        draw(ctx);
      });
    }
    form.querySelector('#close-checklist').addEventListener('click', () => { view.draft = null; draw(ctx); });
  }
  el.querySelector('#pings-form')?.addEventListener('submit', (e) => { e.preventDefault(); savePings(e.target, ctx); });
}

registerView({
  id: 'settings',
  label: 'view_settings',
  // Who may read tier policies and checklists; only admins write them or read the ping settings.
  roles: ['admin', 'manager', 'supervisor', 'auditor'],
  mount(el) {
    view.el = el;
  },
  async show(el, ctx) {
    await load(ctx);
    draw(ctx);
  },
  translate() {
    if (!view.el) return;
    syncDraft();
    draw(shared);
  },
});
