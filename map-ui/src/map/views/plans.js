// Beat plans (admins and managers): a rep of the caller's scope, their territory's outlets on a map
// of the view's own (status symbol, size by tier), their plans with the items; an editor that
// builds or revises a plan (outlets from the map by click or lasso, or from a searchable list, into
// the day being edited; weekday and week of the cycle or a date, windows, durations; a day's order
// by drag, buttons, nearest neighbour or the solver) and shows at once whether each outlet is
// planned as often as its tier asks and whether each day fits the working hours (planrules.js);
// and the beat generator (POST /beats/proposals) for the rep or a team, shown per rep with the
// days, each stop's reason, what was not placed and the travel against the baseline, saved only
// on Accept (POST /plans, after ending the rep's overlapping plans once the manager confirms:
// the server would keep both and plan the outlets twice).
import Sortable from 'sortablejs';
import { t, register } from '../../common/i18n.js';
import { esc } from '../../common/text.js';
import { addDays, dayIn, distance, isoDay, pct } from '../../common/format.js';
import { bboxParam, featureCollection, pointFeature } from '../../common/geo.js';
import { addSources, baseStyle, createMap, fitTo, pointerOver } from '../../common/map.js';
import { registerView } from '../views.js';
import { api, ctx } from '../context.js';
import { addImages } from '../outlets.js';
import { field, showErrors } from './form.js';
import {
  dayBefore, dayKey, dayLoads, frequencyCheck, itemBody, moveStop, orderByNearest, overlapping,
  percentShorter, renumber, shortTime,
} from './planrules.js';
import { applyDayOrder, dayGroups, dayOrderBody, dayOrderErrors, lassoPick, reorderDay } from './planedit.js';
import { PLANS_STRINGS } from './plans.strings.js';

register(PLANS_STRINGS);

const view = {
  el: null, map: null, mapReady: null, reps: [], territories: [], policies: [], rep: null,
  outlets: [], features: [], plans: [], editor: null, filter: '', proposal: null, names: new Map(),
  /** The lasso: on or off, the path being drawn (`[[lon, lat], ...]`) and the pointer drawing it. */
  lasso: { on: false, path: [], pointer: null },
  sortables: [],
};
/** Seconds the solver may take for one day of the editor. */
const SOLVER_SECONDS = 2;
/** What the browser test reads: the rep, plans, editor and proposal shown. */
globalThis.fieldvisitPlans = view;

const WEEKDAY_NUMBERS = [1, 2, 3, 4, 5, 6, 7];
const wd = (n) => t(`pl_wd${n}`);
const $in = (sel) => view.el.querySelector(sel);

/** Today in the org's time zone, as a UTC midnight Date. */
function orgToday() {
  return new Date(`${dayIn(new Date(), ctx.me?.org?.timezone ?? 'UTC')}T00:00:00Z`);
}

/** The org's Monday after today, `YYYY-MM-DD`. */
function nextMonday() {
  const d = orgToday();
  return isoDay(addDays(d, ((8 - d.getUTCDay()) % 7) || 7));
}

async function load() {
  const [users, territories, policies] = await Promise.all([
    api.all('/users'), api.all('/territories').catch(() => []), api.request('/tier-policies'),
  ]);
  view.reps = users.filter((u) => u.role === 'rep' && u.active).sort((a, b) => a.name.localeCompare(b.name));
  Object.assign(view, { territories, policies });
}

function skeleton() {
  view.el.innerHTML = `
    <h1 data-i18n-plans="view_plans">${esc(t('view_plans'))}</h1>
    <label class="field"><span>${esc(t('pl_rep'))}</span><select id="plans-rep" data-testid="plans-rep"></select></label>
    <div class="plans-layout">
      <div><div id="plans-map" class="plans-map" data-testid="plans-map"></div><p class="notice" id="plans-map-hint"></p>
        <p role="status" id="plans-lasso-status" data-testid="plans-lasso-status"></p></div>
      <div><section id="plans-list" data-testid="plans-list"></section></div>
    </div>
    <section id="plans-editor" data-testid="plans-editor"></section>
    <section id="plans-generate" data-testid="plans-generate"></section>
    <section id="plans-proposal" data-testid="plans-proposal"></section>`;
  $in('#plans-rep').addEventListener('change', (e) => selectRep(Number(e.target.value)));
}

function drawRepPicker() {
  const sel = $in('#plans-rep');
  sel.innerHTML = `<option value="">${esc(t(view.reps.length ? 'pl_pick_rep' : 'pl_no_reps'))}</option>`
    + view.reps.map((r) => `<option value="${r.id}" ${r.id === view.rep?.id ? 'selected' : ''}>${esc(r.name)} (${esc(r.login)})</option>`).join('');
  $in('#plans-map-hint').textContent = t('pl_map_hint');
  drawLassoButton();
  drawLassoStatus();
}

/** The view's own map, made once; the promise resolves when its layers are there. */
function ensureMap() {
  if (view.mapReady) { view.map?.resize(); return view.mapReady; }
  view.mapReady = (async () => {
    const map = createMap({ container: $in('#plans-map'), style: await baseStyle(), center: [116.4, 39.9], zoom: 10 });
    view.map = map;
    globalThis.fieldvisitPlansMap = map;
    await new Promise((resolve) => map.on('load', resolve));
    addImages(map);
    addSources(map, ['plan-outlets', 'plan-chosen', 'plan-lasso']);
    map.addLayer({ id: 'plan-chosen', type: 'circle', source: 'plan-chosen',
      paint: { 'circle-radius': 13, 'circle-color': 'rgba(0,0,0,0)', 'circle-stroke-color': '#12355b', 'circle-stroke-width': 3 } });
    map.addLayer({ id: 'plan-outlets', type: 'symbol', source: 'plan-outlets', layout: {
      'icon-image': ['concat', 'status-', ['get', 'status']], 'icon-allow-overlap': true,
      'icon-size': ['match', ['get', 'tier'], 'VIP', 1.4, 'A', 1.15, 'B', 0.95, 0.75] } });
    map.addLayer({ id: 'plan-lasso-fill', type: 'fill', source: 'plan-lasso', filter: ['==', ['geometry-type'], 'Polygon'],
      paint: { 'fill-color': '#12355b', 'fill-opacity': 0.12 } }, 'plan-chosen');
    map.addLayer({ id: 'plan-lasso-line', type: 'line', source: 'plan-lasso',
      paint: { 'line-color': '#12355b', 'line-width': 2, 'line-dasharray': [2, 1] } });
    map.on('click', 'plan-outlets', (e) => { if (!view.lasso.on && e.features[0]) addOutlet(Number(e.features[0].id)); });
    pointerOver(map, ['plan-outlets']);
    map.addControl({ onAdd: lassoControl, onRemove() {} }, 'top-left');
    lassoEvents(map);
  })();
  return view.mapReady;
}

/** The lasso's toggle, a control of the map. */
function lassoControl() {
  const div = document.createElement('div');
  div.className = 'maplibregl-ctrl maplibregl-ctrl-group plans-lasso-ctrl';
  div.innerHTML = '<button type="button" id="plans-lasso" data-testid="plans-lasso" aria-pressed="false"></button>';
  div.querySelector('button').addEventListener('click', () => setLasso(!view.lasso.on));
  queueMicrotask(drawLassoButton);
  return div;
}

function drawLassoButton() {
  const b = view.el?.querySelector('#plans-lasso');
  if (!b) return;
  b.textContent = t('pl_lasso');
  b.title = t(view.lasso.on ? 'pl_lasso_on' : 'pl_lasso_off');
  b.setAttribute('aria-pressed', String(view.lasso.on));
}

/** Lasso on: a press-drag on the map draws a polygon instead of panning; off: the map pans again. */
function setLasso(on) {
  const map = view.map;
  view.lasso = { on, path: [], pointer: null };
  for (const h of ['dragPan', 'dragRotate', 'touchZoomRotate', 'doubleClickZoom', 'boxZoom']) {
    if (on) map[h].disable(); else map[h].enable();
  }
  $in('#plans-map').classList.toggle('lasso-on', on);
  drawLasso();
  drawLassoButton();
}

/** Pointer events (mouse, touch, pen) on the map while the lasso is on: the path follows the pointer. */
function lassoEvents(map) {
  const box = map.getCanvasContainer();
  const at = (e) => {
    const r = box.getBoundingClientRect();
    return map.unproject([e.clientX - r.left, e.clientY - r.top]).toArray();
  };
  box.addEventListener('pointerdown', (e) => {
    if (!view.lasso.on || e.button > 0 || view.lasso.pointer != null) return;
    e.preventDefault();
    box.setPointerCapture?.(e.pointerId);
    view.lasso.pointer = e.pointerId;
    view.lasso.path = [at(e)];
    drawLasso();
  });
  box.addEventListener('pointermove', (e) => {
    if (view.lasso.pointer !== e.pointerId) return;
    view.lasso.path.push(at(e));
    drawLasso();
  });
  const end = (e) => {
    if (view.lasso.pointer !== e.pointerId) return;
    view.lasso.pointer = null;
    if (e.type === 'pointerup') takeLasso(view.lasso.path);
    view.lasso.path = [];
    drawLasso();
  };
  box.addEventListener('pointerup', end);
  box.addEventListener('pointercancel', end);
}

let lassoFrame = 0;
/** The path being drawn: its line, and its area once it has three points. */
function drawLasso() {
  if (lassoFrame) return;
  lassoFrame = requestAnimationFrame(() => {
    lassoFrame = 0;
    const source = view.map?.getSource('plan-lasso');
    if (!source) return;
    const path = view.lasso.path;
    const features = [];
    if (path.length >= 2) features.push({ type: 'Feature', properties: {}, geometry: { type: 'LineString', coordinates: path } });
    if (path.length >= 3) features.push({ type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [[...path, path[0]]] } });
    source.setData(featureCollection(features));
  });
}

/** Adds every outlet shown on the map inside the lasso that the day being edited lacks, and says how many. */
function takeLasso(path) {
  const ed = view.editor;
  if (!ed) return;
  const shown = new Set(view.features.map((f) => Number(f.id)));
  const ids = lassoPick(view.outlets.filter((o) => shown.has(o.id)), path, ed.items, ed.day);
  addOutlets(ids);
  view.lassoAdded = { n: ids.length, day: { ...ed.day } };
  drawLassoStatus();
}

/** How many outlets the last lasso added, and to which day (in the page's language). */
function drawLassoStatus() {
  const status = view.el?.querySelector('#plans-lasso-status');
  const last = view.lassoAdded;
  if (!status) return;
  if (!last) { status.textContent = ''; delete status.dataset.added; return; }
  status.textContent = t('pl_lasso_added').replace('{n}', String(last.n)).replace('{day}', itemDay(last.day));
  status.dataset.added = String(last.n);
}

/** The rep's territory: its outlets, their status over the last 4 weeks, and the rep's plans. */
async function selectRep(id) {
  view.rep = view.reps.find((r) => r.id === id) ?? null;
  view.proposal = null;
  if (view.generate?.scope === 'rep') view.generate.territory_id = view.rep?.territory_id;
  view.outlets = [];
  view.features = [];
  view.plans = [];
  view.editor = null;
  view.lassoAdded = null;
  drawAll();
  if (!view.rep) return;
  const rep = view.rep;
  const [outlets, plans] = await Promise.all([
    rep.territory_id == null ? [] : api.all(`/outlets?territory=${rep.territory_id}`),
    api.request(`/plans?rep_id=${rep.id}`),
  ]);
  if (view.rep !== rep) return;
  view.outlets = outlets;
  for (const o of outlets) view.names.set(o.id, o);
  view.plans = plans;
  view.editor = newEditor();
  drawAll();
  await drawMap();
}

async function drawMap() {
  await view.mapReady;
  const ids = new Set(view.outlets.map((o) => o.id));
  let features = [];
  if (view.outlets.length) {
    const lats = view.outlets.map((o) => o.lat), lons = view.outlets.map((o) => o.lon);
    const pad = 0.001; // bboxParam rounds to 5 decimals: an outlet on the edge must stay in
    const bbox = bboxParam([Math.min(...lons) - pad, Math.min(...lats) - pad, Math.max(...lons) + pad, Math.max(...lats) + pad]);
    const today = orgToday();
    const layer = await api.request(`/layers/outlets?from=${isoDay(addDays(today, -27))}&to=${isoDay(today)}&bbox=${bbox}&limit=50000`);
    features = layer.features.filter((f) => ids.has(Number(f.id)));
  }
  view.features = features;
  view.map.getSource('plan-outlets').setData(featureCollection(features));
  fitTo(view.map, featureCollection(features), 30);
  drawChosen();
}

function drawChosen() {
  if (!view.map?.getSource('plan-chosen')) return;
  const chosen = new Set((view.editor?.items ?? []).map((i) => i.outlet_id));
  view.map.getSource('plan-chosen').setData(featureCollection(
    view.outlets.filter((o) => chosen.has(o.id)).map((o) => pointFeature(o.lon, o.lat, {}, o.id))));
}

const outletLabel = (id) => {
  const o = view.names.get(id);
  return o ? `${o.code} ${o.name}${o.tier ? ` (${o.tier})` : ''}` : `#${id}`;
};

function drawAll() {
  drawRepPicker();
  drawPlans();
  drawEditor();
  drawGenerate();
  drawProposal();
}

function drawPlans() {
  const box = $in('#plans-list');
  if (!view.rep) { box.innerHTML = ''; return; }
  const plans = [...view.plans].sort((a, b) => b.valid_from.localeCompare(a.valid_from));
  box.innerHTML = `<h2>${esc(t('pl_plans'))} · ${esc(view.rep.name)}</h2>
    <p>${view.outlets.length} ${esc(t('pl_outlets_n'))}</p>
    ${plans.length ? '' : `<p>${esc(t('pl_no_plans'))}</p>`}
    ${plans.map((p) => {
    const items = p.items.filter((i) => i.retired_from == null);
    return `<details data-plan="${p.id}" data-testid="plan-${p.id}"><summary>${esc(p.name)} · ${esc(p.valid_from)} – ${esc(p.valid_to ?? t('pl_open_ended'))}
        · ${esc(t('pl_cycle'))}: ${p.cycle_weeks} · ${items.length} ${esc(t('pl_items'))}${p.active ? '' : ` · ${esc(t('pl_ended'))}`}</summary>
      ${p.active ? `<button type="button" data-revise="${p.id}">${esc(t('pl_revise'))}</button>` : ''}
      <ol class="plan-items">${sortByDay(items).map((i) => `<li>${esc(itemDay(i))} · ${esc(outletLabel(i.outlet_id))}
        ${i.window_start || i.window_end ? ` · ${esc(shortTime(i.window_start))}–${esc(shortTime(i.window_end))}` : ''}</li>`).join('')}</ol></details>`;
  }).join('')}
    <button type="button" id="plans-new">${esc(t('pl_new'))}</button>`;
  for (const b of box.querySelectorAll('[data-revise]')) b.addEventListener('click', () => reviseEditor(Number(b.dataset.revise)));
  box.querySelector('#plans-new').addEventListener('click', () => { view.editor = newEditor(); drawEditor(); drawChosen(); });
}

function itemDay(i) {
  if (i.visit_date) return i.visit_date;
  return `${wd(i.weekday)}${i.week_of_cycle ? ` · ${t('pl_week_n')} ${i.week_of_cycle}` : ` · ${t('pl_every_week')}`}`;
}

/** Items ordered by day (dated first, then week and weekday) and, within a day, by their order. */
function sortByDay(items) {
  const rank = (i) => (i.visit_date ? `0${i.visit_date}` : `1${String(i.week_of_cycle ?? 0).padStart(2, '0')}${i.weekday}`);
  return [...items].sort((a, b) => rank(a).localeCompare(rank(b)) || (a.seq ?? 0) - (b.seq ?? 0));
}

function newEditor() {
  return { plan_id: null, name: `${view.rep?.name ?? ''} beat`, cycle_weeks: 4, valid_from: nextMonday(), valid_to: '', from: '',
    day_start: '09:00', day_end: '18:00', items: [], saved: null, day: { weekday: 1, week_of_cycle: '', visit_date: '' }, solved: {} };
}

function reviseEditor(planId) {
  const p = view.plans.find((x) => x.id === planId);
  const tomorrow = isoDay(addDays(orgToday(), 1));
  view.editor = { ...newEditor(), plan_id: p.id, name: p.name, cycle_weeks: p.cycle_weeks, valid_from: p.valid_from,
    valid_to: p.valid_to ?? '', from: tomorrow > p.valid_from ? tomorrow : p.valid_from,
    items: renumber(sortByDay(p.items.filter((i) => i.retired_from == null)).map((i) => ({
      outlet_id: i.outlet_id, weekday: i.weekday ?? 1, week_of_cycle: i.week_of_cycle ?? '', visit_date: i.visit_date ?? '',
      window_start: shortTime(i.window_start), window_end: shortTime(i.window_end), expected_duration_s: i.expected_duration_s ?? '', seq: i.seq,
    }))) };
  drawEditor();
  drawChosen();
  $in('#plans-editor').scrollIntoView();
}

function addOutlet(id) {
  addOutlets([id]);
}

/** Adds the outlets to the end of the day being edited (`editor.day`), each with its window and duration. */
function addOutlets(ids) {
  const ed = view.editor;
  if (!ed || !ids.length) return;
  ed.items = renumber(sortByDay([...ed.items, ...ids.map((id) => {
    const o = view.names.get(id);
    return { outlet_id: id, weekday: ed.day.weekday, week_of_cycle: ed.day.week_of_cycle, visit_date: ed.day.visit_date,
      window_start: shortTime(o?.attributes?.window_start), window_end: shortTime(o?.attributes?.window_end),
      expected_duration_s: durationOf({ outlet_id: id }), seq: 999 };
  })]));
  drawEditor();
  drawChosen();
}

/** A stop's duration when the item names none: its tier's minimum dwell + 10 minutes (as generated). */
function durationOf(item) {
  const tier = view.names.get(item.outlet_id)?.tier;
  const policy = view.policies.find((p) => p.tier === tier);
  return (policy?.min_dwell_s ?? 300) + 600;
}

/** Whether the solver's answer for the day `key` still describes its stops (not moved since). */
function solvedFresh(ed, key) {
  const s = ed.solved?.[key];
  return !!s && s.order.join() === ed.items.filter((i) => dayKey(i) === key).map((i) => i.outlet_id).join();
}

function drawEditor() {
  const box = $in('#plans-editor');
  const ed = view.editor;
  for (const s of view.sortables) s.destroy();
  view.sortables = [];
  if (!view.rep || !ed) { box.innerHTML = ''; return; }
  const f = view.filter.trim().toLowerCase();
  const found = f ? view.outlets.filter((o) => `${o.code} ${o.name}`.toLowerCase().includes(f)).slice(0, 20) : [];
  const weekOptions = (sel) => `<option value="">${esc(t('pl_every_week'))}</option>`
    + Array.from({ length: ed.cycle_weeks }, (_, k) => `<option value="${k + 1}" ${Number(sel) === k + 1 ? 'selected' : ''}>${k + 1}</option>`).join('');
  const err = (i, k) => `<small class="field-error" data-error-for="items[${i}].${k}" role="alert"></small>`;
  box.innerHTML = `<h2>${esc(t(ed.plan_id ? 'pl_editing' : 'pl_creating'))}${ed.plan_id ? ` #${ed.plan_id}` : ''}</h2>
    <form id="plan-form" data-testid="plan-form" novalidate>
      <div class="plans-fields">
        ${field({ name: 'name', label: 'pl_name', value: ed.name, attrs: 'required' })}
        ${field({ name: 'cycle_weeks', label: 'pl_cycle', type: 'number', value: ed.cycle_weeks, attrs: `min="1" max="12" ${ed.plan_id ? 'readonly' : ''}` })}
        ${ed.plan_id ? field({ name: 'from', label: 'pl_revise_from', type: 'date', value: ed.from })
    : field({ name: 'valid_from', label: 'pl_valid_from', type: 'date', value: ed.valid_from })}
        ${field({ name: 'valid_to', label: 'pl_valid_to', type: 'date', value: ed.valid_to })}
        ${field({ name: 'day_start', label: 'pl_day_start', type: 'time', value: ed.day_start })}
        ${field({ name: 'day_end', label: 'pl_day_end', type: 'time', value: ed.day_end })}
      </div>
      <label class="field"><span>${esc(t('pl_search_outlets'))}</span><input id="plans-filter" type="search" value="${esc(view.filter)}"></label>
      <ul class="plans-found" data-testid="plans-found">${found.map((o) => `<li>${esc(o.code)} ${esc(o.name)} (${esc(o.tier)})
        <button type="button" data-add="${o.id}">${esc(t('pl_add'))}</button></li>`).join('')}</ul>
      <small class="field-error" data-error-for="items" role="alert"></small>
      <div class="plans-add-day" data-testid="plan-add-day"><span>${esc(t('pl_add_to'))}</span>
        <label><span>${esc(t('pl_weekday'))}</span><select id="plan-add-weekday">${WEEKDAY_NUMBERS.map((n) => `<option value="${n}" ${Number(ed.day.weekday) === n ? 'selected' : ''}>${esc(wd(n))}</option>`).join('')}</select></label>
        <label><span>${esc(t('pl_week'))}</span><select id="plan-add-week">${weekOptions(ed.day.week_of_cycle)}</select></label></div>
      ${ed.items.length ? '' : `<p>${esc(t('pl_no_items'))}</p>`}
      <div class="plan-stops" data-testid="plan-stops">${dayGroups(ed.items).map(({ key, rows }) => {
    const fresh = solvedFresh(ed, key);
    const solved = ed.solved[key];
    return `<section class="plan-day" data-day="${esc(key)}" data-testid="plan-day">
      <h3>${esc(itemDay(ed.items[rows[0]]))} · ${rows.length} ${esc(t('pl_stops'))}</h3>
      ${fresh ? `<p data-testid="day-travel" data-travel="${solved.travel_m}" data-given="${solved.given_travel_m}">${esc(t('pl_travel'))} ${esc(distance(solved.travel_m))} (${esc(t('pl_was'))} ${esc(distance(solved.given_travel_m))})</p>` : ''}
      <ol class="plan-day-stops" data-day="${esc(key)}">${rows.map((i) => [ed.items[i], i]).map(([it, i]) => `<li class="stop" data-row="${i}" data-outlet="${it.outlet_id}">
        <span class="drag-handle" title="${esc(t('pl_drag'))}" aria-hidden="true">⠿</span>
        <strong>${it.seq}. ${esc(outletLabel(it.outlet_id))}</strong>${fresh && it.arrival ? ` <small data-testid="stop-arrival">${esc(t('pl_arrival'))} ${esc(it.arrival)}</small>` : ''}
        ${fresh && it.unplaced ? `<small class="field-error" data-testid="stop-unplaced">${esc(t('pl_unplaced_day'))}: ${esc(it.unplaced)}</small>` : ''}${err(i, 'outlet_id')}${err(i, 'seq')}
        <div class="stop-fields">
          <label><span>${esc(t('pl_weekday'))}</span><select data-k="weekday">${WEEKDAY_NUMBERS.map((n) => `<option value="${n}" ${Number(it.weekday) === n ? 'selected' : ''}>${esc(wd(n))}</option>`).join('')}</select>${err(i, 'weekday')}</label>
          <label><span>${esc(t('pl_week'))}</span><select data-k="week_of_cycle">${weekOptions(it.week_of_cycle)}</select>${err(i, 'week_of_cycle')}</label>
          <label><span>${esc(t('pl_date'))}</span><input type="date" data-k="visit_date" value="${esc(it.visit_date ?? '')}">${err(i, 'visit_date')}</label>
          <label><span>${esc(t('pl_window'))}</span><span class="pair"><input type="time" data-k="window_start" value="${esc(it.window_start ?? '')}">–<input type="time" data-k="window_end" value="${esc(it.window_end ?? '')}"></span>${err(i, 'window_start')}${err(i, 'window_end')}</label>
          <label><span>${esc(t('pl_duration'))}</span><input type="number" min="0" data-k="minutes" value="${it.expected_duration_s === '' ? '' : Math.round(Number(it.expected_duration_s) / 60)}">${err(i, 'expected_duration_s')}</label>
          <span class="stop-buttons"><button type="button" data-move="-1" aria-label="${esc(t('pl_up'))}">↑</button><button type="button" data-move="1" aria-label="${esc(t('pl_down'))}">↓</button>
          <button type="button" data-remove>${esc(t('pl_remove'))}</button></span>
        </div></li>`).join('')}</ol></section>`;
  }).join('')}</div>
      <div id="plan-checks" data-testid="plan-checks"></div>
      <button type="button" id="plan-nearest">${esc(t('pl_order_nearest'))}</button>
      <button type="button" id="plan-solver" data-testid="plan-solver" ${ed.items.length ? '' : 'disabled'}>${esc(t('pl_order_solver'))}</button>
      <p role="status" id="plan-solver-status" data-testid="plan-solver-status"></p>
      <button type="submit">${esc(t('pl_save'))}</button>
      <p class="field-error" data-error-for="" role="alert"></p>
      <p role="status" data-testid="plan-saved">${ed.saved ? esc(t('pl_saved')) : ''}</p>
    </form>`;
  const form = box.querySelector('#plan-form');
  form.addEventListener('submit', savePlan);
  for (const name of ['name', 'cycle_weeks', 'valid_from', 'valid_to', 'from', 'day_start', 'day_end']) {
    form.querySelector(`[name=${name}]`)?.addEventListener('change', (e) => {
      ed[name] = name === 'cycle_weeks' ? Math.min(12, Math.max(1, Number(e.target.value) || 1)) : e.target.value;
      if (name === 'cycle_weeks') drawEditor(); else drawChecks();
    });
  }
  box.querySelector('#plans-filter').addEventListener('input', (e) => {
    view.filter = e.target.value;
    const pos = e.target.selectionStart;
    drawEditor();
    const input = box.querySelector('#plans-filter');
    input.focus();
    input.setSelectionRange(pos, pos);
  });
  for (const b of box.querySelectorAll('[data-add]')) b.addEventListener('click', () => addOutlet(Number(b.dataset.add)));
  for (const li of box.querySelectorAll('[data-row]')) {
    const i = Number(li.dataset.row);
    for (const input of li.querySelectorAll('[data-k]')) {
      input.addEventListener('change', () => {
        const k = input.dataset.k;
        if (k === 'minutes') ed.items[i].expected_duration_s = input.value === '' ? '' : Number(input.value) * 60;
        else ed.items[i][k] = input.value;
        if (k === 'weekday' || k === 'week_of_cycle' || k === 'visit_date') { ed.items = renumber(sortByDay(ed.items.map((x) => ({ ...x, seq: x === ed.items[i] ? 999 : x.seq })))); drawEditor(); } else drawChecks();
      });
    }
    for (const b of li.querySelectorAll('[data-move]')) b.addEventListener('click', () => { ed.items = moveStop(ed.items, i, Number(b.dataset.move)); drawEditor(); });
    li.querySelector('[data-remove]').addEventListener('click', () => { ed.items = renumber(ed.items.filter((_, j) => j !== i)); drawEditor(); drawChosen(); });
  }
  box.querySelector('#plan-nearest').addEventListener('click', () => {
    ed.items = orderByNearest(ed.items, new Map(view.outlets.map((o) => [o.id, { lat: o.lat, lon: o.lon }])));
    drawEditor();
  });
  box.querySelector('#plan-solver').addEventListener('click', () => orderBySolver(form));
  box.querySelector('#plan-add-weekday').addEventListener('change', (e) => { ed.day.weekday = Number(e.target.value); });
  box.querySelector('#plan-add-week').addEventListener('change', (e) => { ed.day.week_of_cycle = e.target.value; });
  // Drag to reorder, by the handle, within one day's list (each list a group of its own). Pointer
  // events (forceFallback) rather than HTML drag and drop: the same on a phone and with a mouse.
  view.sortables = [...box.querySelectorAll('ol.plan-day-stops')].map((ol) => Sortable.create(ol, {
    group: { name: `day-${ol.dataset.day}`, pull: false, put: false }, handle: '.drag-handle', draggable: 'li.stop',
    forceFallback: true, fallbackOnBody: true, animation: 0,
    onEnd() {
      const rows = [...ol.children].map((li) => Number(li.dataset.row)).filter(Number.isInteger);
      setTimeout(() => {
        if (view.editor !== ed) return;
        ed.items = reorderDay(ed.items, rows);
        drawEditor();
      }, 0);
    },
  }));
  drawChecks();
}

/**
 * Each day's stops in the solver's order (`POST /beats/day-order`, a day at a time): what does not
 * fit the day goes to its end with the reason; the travel against that of the order sent. A
 * refusal is shown beside the rows it names.
 */
async function orderBySolver(form) {
  const ed = view.editor;
  const status = form.querySelector('#plan-solver-status');
  const button = form.querySelector('#plan-solver');
  showErrors(form, null);
  status.textContent = t('pl_solving');
  button.disabled = true;
  for (const { key, rows } of dayGroups(ed.items)) {
    const body = dayOrderBody(view.rep.id, rows.map((i) => ed.items[i]), { start: ed.day_start, end: ed.day_end }, SOLVER_SECONDS, durationOf);
    let answer;
    try {
      answer = await api.request('/beats/day-order', { method: 'POST', json: body });
    } catch (err) {
      status.textContent = '';
      button.disabled = false;
      showErrors(form, dayOrderErrors(err, rows));
      return;
    }
    if (view.editor !== ed) return;
    ed.items = applyDayOrder(ed.items, key, answer);
    ed.solved[key] = { travel_m: answer.travel_m, given_travel_m: answer.given_travel_m,
      order: ed.items.filter((i) => dayKey(i) === key).map((i) => i.outlet_id) };
  }
  drawEditor();
}

/** The editor's checks, at once: tier frequency per outlet and each day against the working hours. */
function drawChecks() {
  const ed = view.editor;
  const box = $in('#plan-checks');
  if (!box || !ed) return;
  const freq = frequencyCheck(ed.items, view.outlets.filter((o) => o.status === 'active'), view.policies, ed.cycle_weeks);
  const short = freq.filter((c) => !c.ok);
  const days = dayLoads(ed.items, ed.cycle_weeks, { start: ed.day_start, end: ed.day_end }, durationOf);
  const over = days.filter((d) => !d.ok);
  const dayName = (d) => (d.date ? d.date : `${t('pl_week_n')} ${d.week} · ${wd(d.weekday)}`);
  box.innerHTML = `<h3>${esc(t('pl_frequency'))}</h3>
    <p data-testid="frequency-summary" data-short="${short.length}">${short.length ? `${short.length} ${esc(t('pl_frequency_short'))}` : esc(t('pl_frequency_ok'))}</p>
    ${short.length ? `<details><summary>${esc(t('pl_planned_required'))}</summary><ul data-testid="frequency-short">${short.map((c) => `<li data-outlet="${c.outlet_id}">${esc(outletLabel(c.outlet_id))}: ${c.planned} / ${c.required}</li>`).join('')}</ul></details>` : ''}
    <h3>${esc(t('pl_days'))}</h3>
    <p data-testid="days-summary" data-over="${over.length}">${over.length ? `${over.length} ${esc(t('pl_days_over'))}` : esc(t('pl_days_ok'))}</p>
    <ul class="plan-days">${days.map((d) => `<li class="${d.ok ? '' : 'over'}" data-day="${esc(d.key)}">${esc(dayName(d))}: ${d.stops} ${esc(t('pl_stops'))},
      ${(d.seconds / 3600).toFixed(1)} / ${(d.available / 3600).toFixed(1)} ${esc(t('pl_hours'))}${d.ok ? '' : ' ⚠'}</li>`).join('')}</ul>`;
}

async function savePlan(e) {
  e.preventDefault();
  const form = e.target;
  const ed = view.editor;
  showErrors(form, null);
  const items = ed.items.map(itemBody);
  try {
    if (ed.plan_id) {
      const body = { name: ed.name, items, ...(ed.valid_to ? { valid_to: ed.valid_to } : {}) };
      await api.request(`/plans/${ed.plan_id}?from=${ed.from}`, { method: 'PUT', json: body });
    } else {
      const body = { rep_id: view.rep.id, name: ed.name, cycle_weeks: ed.cycle_weeks, valid_from: ed.valid_from, items,
        ...(ed.valid_to ? { valid_to: ed.valid_to } : {}) };
      const saved = await api.request('/plans', { method: 'POST', json: body });
      ed.plan_id = saved.id;
      ed.from = isoDay(addDays(orgToday(), 1));
    }
    ed.saved = true;
    view.plans = await api.request(`/plans?rep_id=${view.rep.id}`);
    drawPlans();
    drawEditor();
  } catch (err) {
    showErrors(form, err);
  }
}

function drawGenerate() {
  const box = $in('#plans-generate');
  if (!view.rep) { box.innerHTML = ''; return; }
  const g = view.generate ??= { scope: 'rep', territory_id: view.rep.territory_id, cycle_weeks: 4, valid_from: nextMonday(), day_start: '09:00', day_end: '18:00', max_seconds: 10 };
  box.innerHTML = `<h2>${esc(t('pl_generate'))}</h2>
    <form id="generate-form" data-testid="generate-form" novalidate><div class="plans-fields">
      <label class="field"><span>${esc(t('pl_for'))}</span><select name="scope">
        <option value="rep" ${g.scope === 'rep' ? 'selected' : ''}>${esc(t('pl_for_rep'))}: ${esc(view.rep.name)}</option>
        <option value="team" ${g.scope === 'team' ? 'selected' : ''}>${esc(t('pl_for_team'))}</option></select>
        <small class="field-error" data-error-for="rep_id"></small></label>
      <label class="field"><span>${esc(t('pl_team'))}</span><select name="territory_id">${view.territories.map((tr) => `<option value="${tr.id}" ${tr.id === g.territory_id ? 'selected' : ''}>${esc(tr.name)} (${esc(tr.code)})</option>`).join('')}</select>
        <small class="field-error" data-error-for="territory_id"></small></label>
      ${field({ name: 'cycle_weeks', label: 'pl_cycle', type: 'number', value: g.cycle_weeks, attrs: 'min="1" max="12"' })}
      ${field({ name: 'valid_from', label: 'pl_valid_from', type: 'date', value: g.valid_from })}
      ${field({ name: 'day_start', label: 'pl_day_start', type: 'time', value: g.day_start })}
      ${field({ name: 'day_end', label: 'pl_day_end', type: 'time', value: g.day_end })}
      ${field({ name: 'max_seconds', label: 'pl_seconds', type: 'number', value: g.max_seconds, attrs: 'min="1" max="60"' })}
    </div><button type="submit">${esc(t('pl_generate_go'))}</button> <small>${esc(t('pl_not_saved'))}</small>
    <p class="field-error" data-error-for="" role="alert"></p><p role="status" id="generate-status"></p></form>`;
  const form = box.querySelector('#generate-form');
  const territoryField = form.querySelector('[name=territory_id]').closest('label');
  territoryField.hidden = g.scope !== 'team';
  form.querySelector('[name=scope]').addEventListener('change', (e) => { territoryField.hidden = e.target.value !== 'team'; });
  // What is typed is kept as it is typed: the form is drawn again when the rep's data arrives.
  for (const type of ['input', 'change']) form.addEventListener(type, () => readGenerate(form));
  form.addEventListener('submit', generate);
}

/** The generator's form into `view.generate`. */
function readGenerate(form) {
  const data = new FormData(form);
  return Object.assign(view.generate, { scope: data.get('scope'), territory_id: Number(data.get('territory_id')), cycle_weeks: Number(data.get('cycle_weeks')),
    valid_from: data.get('valid_from'), day_start: data.get('day_start'), day_end: data.get('day_end'), max_seconds: Number(data.get('max_seconds')) });
}

async function generate(e) {
  e.preventDefault();
  const form = e.target;
  const g = readGenerate(form);
  showErrors(form, null);
  const body = { ...(g.scope === 'team' ? { territory_id: g.territory_id } : { rep_id: view.rep.id }), cycle_weeks: g.cycle_weeks,
    ...(g.valid_from ? { valid_from: g.valid_from } : {}), day_start: g.day_start, day_end: g.day_end, max_seconds: g.max_seconds };
  const status = form.querySelector('#generate-status');
  status.textContent = t('pl_generating');
  view.proposal = null;
  drawProposal();
  try {
    const [proposal, teamOutlets] = await Promise.all([
      api.request('/beats/proposals', { method: 'POST', json: body }),
      g.scope === 'team' ? api.all(`/outlets?territory=${g.territory_id}`) : [],
    ]);
    for (const o of teamOutlets) view.names.set(o.id, o);
    view.proposal = { ...proposal, accepted: {} };
    status.textContent = '';
    drawProposal();
  } catch (err) {
    status.textContent = '';
    showErrors(form, err);
  }
}

function travelLine(x) {
  const shorter = percentShorter(x.travel_m, x.baseline_travel_m);
  return `${esc(t('pl_travel'))} ${esc(distance(x.travel_m))} · ${esc(t('pl_baseline'))} ${esc(distance(x.baseline_travel_m))}`
    + (shorter == null ? '' : ` · <span data-testid="shorter">${esc(pct(shorter))}</span> ${esc(t('pl_shorter'))}`);
}

function drawProposal() {
  const box = $in('#plans-proposal');
  const p = view.proposal;
  if (!p) { box.innerHTML = ''; return; }
  const repBlock = (r) => {
    const days = new Map();
    for (const it of r.items) (days.get(it.day) ?? days.set(it.day, []).get(it.day)).push(it);
    return `<article class="proposal-rep" data-rep="${r.rep_id}" data-testid="proposal-rep-${r.rep_id}">
      <h3>${esc(r.name)}</h3>
      <p><span data-testid="placed">${r.placed_visits} / ${r.required_visits}</span> ${esc(t('pl_placed'))} · ${travelLine(r)}</p>
      ${r.rep_id === view.rep?.id ? `<button type="button" data-edit-proposal="${r.rep_id}">${esc(t('pl_edit_this'))}</button>` : ''}
      <div class="proposal-result" data-result="${r.rep_id}"></div>
      ${[...days.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([day, stops]) => `<details class="proposal-day" data-day="${esc(day)}">
        <summary>${esc(day)} · ${esc(wd(stops[0].weekday))} · ${stops.length} ${esc(t('pl_stops'))}</summary>
        <ol>${stops.sort((a, b) => a.seq - b.seq).map((s) => `<li data-outlet="${s.outlet_id}">${esc(s.arrival)} ${esc(outletLabel(s.outlet_id))}
          <small>${esc(s.window_start)}–${esc(s.window_end)}</small><br><small class="why">${esc(s.why)}</small></li>`).join('')}</ol></details>`).join('')}
    </article>`;
  };
  box.innerHTML = `<h2>${esc(t('pl_proposal'))}</h2>
    <p>${esc(t('pl_valid_from'))} ${esc(p.valid_from)} · ${esc(t('pl_cycle'))}: ${p.cycle_weeks} · ${esc(p.day_start)}–${esc(p.day_end)}</p>
    <p data-testid="proposal-summary">${p.placed_visits} / ${p.required_visits} ${esc(t('pl_placed'))} · ${travelLine(p)}</p>
    <h3>${esc(t('pl_unplaced'))}</h3>
    ${p.unplaced.length ? `<ul data-testid="unplaced">${p.unplaced.map((u) => `<li data-outlet="${u.outlet_id}">${esc(outletLabel(u.outlet_id))} · ${u.visits}: ${esc(u.reason)}</li>`).join('')}</ul>`
    : `<p>${esc(t('pl_none_unplaced'))}</p>`}
    <p><button type="button" id="proposal-accept" data-testid="proposal-accept">${esc(t('pl_accept'))}</button> <small>${esc(t('pl_not_saved'))}</small></p>
    <div id="proposal-confirm" data-testid="proposal-confirm" hidden></div>
    <p role="status" data-testid="proposal-accepted"></p>
    ${p.reps.map(repBlock).join('')}`;
  box.querySelector('#proposal-accept').addEventListener('click', () => accept(false));
  for (const b of box.querySelectorAll('[data-edit-proposal]')) {
    b.addEventListener('click', () => {
      const r = p.reps.find((x) => x.rep_id === Number(b.dataset.editProposal));
      view.editor = { ...newEditor(), name: r.plan.name, cycle_weeks: r.plan.cycle_weeks, valid_from: r.plan.valid_from,
        day_start: p.day_start, day_end: p.day_end,
        items: renumber(sortByDay(r.plan.items.map((i) => ({ ...i, week_of_cycle: i.week_of_cycle ?? '', visit_date: i.visit_date ?? '' })))) };
      drawEditor();
      drawChosen();
      $in('#plans-editor').scrollIntoView();
    });
  }
}

/**
 * Saves each rep's proposed plan. The server keeps a rep's earlier plans as they are (a new plan
 * over an old one plans its outlets twice), so a rep's plans overlapping the new one are named
 * first and ended the day before it starts once the manager confirms.
 */
async function accept(confirmed) {
  const p = view.proposal;
  const box = $in('#plans-proposal');
  const confirmBox = box.querySelector('#proposal-confirm');
  const pending = p.reps.filter((r) => !p.accepted[r.rep_id] && r.plan.items.length);
  const current = await Promise.all(pending.map((r) => api.request(`/plans?rep_id=${r.rep_id}`)));
  const overlaps = pending.flatMap((r, k) => overlapping(current[k], r.plan.valid_from, r.plan.valid_to ?? null).map((plan) => ({ r, plan })));
  if (overlaps.length && !confirmed) {
    confirmBox.hidden = false;
    confirmBox.innerHTML = `<p>${esc(t('pl_overlap'))} ${esc(dayBefore(p.valid_from))}</p>
      <ul>${overlaps.map(({ r, plan }) => `<li>${esc(r.name)}: ${esc(plan.name)} (${esc(plan.valid_from)} – ${esc(plan.valid_to ?? t('pl_open_ended'))})</li>`).join('')}</ul>
      <button type="button" id="proposal-confirm-yes" data-testid="proposal-confirm-yes">${esc(t('pl_end_and_accept'))}</button>
      <button type="button" id="proposal-confirm-no">${esc(t('pl_cancel'))}</button>`;
    confirmBox.querySelector('#proposal-confirm-yes').addEventListener('click', () => accept(true));
    confirmBox.querySelector('#proposal-confirm-no').addEventListener('click', () => { confirmBox.hidden = true; });
    return;
  }
  confirmBox.hidden = true;
  let failed = 0;
  for (const r of pending) {
    const out = box.querySelector(`[data-result="${r.rep_id}"]`);
    try {
      for (const { plan } of overlaps.filter((o) => o.r === r)) {
        await api.request(`/plans/${plan.id}?from=${r.plan.valid_from}`, { method: 'DELETE' });
      }
      const saved = await api.request('/plans', { method: 'POST', json: r.plan });
      p.accepted[r.rep_id] = saved.id;
      out.innerHTML = `<p role="status">${esc(t('pl_saved'))} #${saved.id}</p>`;
    } catch (err) {
      failed += 1;
      out.innerHTML = `<p class="field-error" role="alert">${esc(err.detail || err.message)}</p><ul>${(err.errors ?? []).map((x) => `<li class="field-error">${esc(x.field ?? '')}: ${esc(x.reason ?? '')}</li>`).join('')}</ul>`;
    }
  }
  if (!failed) box.querySelector('[data-testid=proposal-accepted]').textContent = t('pl_accepted');
  if (view.rep) {
    view.plans = await api.request(`/plans?rep_id=${view.rep.id}`);
    drawPlans();
  }
}

registerView({
  id: 'plans',
  label: 'view_plans',
  roles: ['admin', 'manager'],
  mount(el) {
    view.el = el;
  },
  async show() {
    if (!view.el.querySelector('#plans-rep')) {
      await load();
      skeleton();
    }
    ensureMap();
    drawAll();
    if (view.rep) {
      view.plans = await api.request(`/plans?rep_id=${view.rep.id}`);
      drawPlans();
    }
  },
  translate() {
    if (!view.el?.querySelector('#plans-rep')) return;
    view.el.querySelector('h1').textContent = t('view_plans');
    view.el.querySelector('label.field > span').textContent = t('pl_rep');
    drawAll();
  },
});
