// Outlets: the outlets of the caller's scope, searched and filtered (code or name, tier, status,
// territory); admins and managers create and edit them (coordinates from GPS, AMap/Tencent GCJ-02
// or Baidu BD-09), move one by dragging its pin on the map or typing its position, close, suspend
// or reopen it with a reason, and import a CSV or GeoJSON file: the file is first checked by the
// server's dry run, every bad row shown with its line and field, and written only on confirm.
// Supervisors and auditors see the same, read-only. Every outlet's history shows each place with
// its validity period and each status change.
import maplibregl from 'maplibre-gl';
import { t, register } from '../../common/i18n.js';
import { esc } from '../../common/text.js';
import { baseStyle, createMap } from '../../common/map.js';
import { registerView } from '../views.js';
import { api, ctx as shared } from '../context.js';
import { field, showErrors } from './form.js';
import {
  CHANNEL_TYPES, CRS, STATUSES, badRows, canConfirm, changes, contentTypeOf, formatOf, historyRows, importPath,
  listPath, numberOf, positionText, withCrs,
} from './outlets.logic.js';
import { OUTLETS_STRINGS } from './outlets.strings.js';

register(OUTLETS_STRINGS);

const PAGE = 200;
const view = {
  el: null, outlets: [], more: false, tiers: [], territories: [], filter: { q: '', tier: '', status: '', territory: '' },
  selected: null, outlet: null, history: null, map: null, marker: null, mapLoaded: false, style: null,
  preview: null, imported: null, importText: null, seq: 0,
};
/** What the browser test reads: the outlets listed, the one open, its history, the pin and the import's preview. */
globalThis.fieldvisitOutlets = view;

const canWrite = (ctx) => ['admin', 'manager'].includes(ctx.me?.user?.role);
const opt = (value, label, selected) => `<option value="${esc(value)}" ${value === selected ? 'selected' : ''}>${esc(label)}</option>`;
const channelOptions = (sel) => CHANNEL_TYPES.map((c) => opt(c, t(`ol_ch_${c}`), sel)).join('');
const tierOptions = (sel) => view.tiers.map((p) => opt(p.tier, p.tier, sel)).join('');
const crsOptions = (sel = 'wgs84') => CRS.map((c) => opt(c, t(`ol_crs_${c}`), sel)).join('');
const select = (name, label, options, attrs = '') => `<label class="field"><span>${esc(t(label))}</span>
  <select name="${name}" ${attrs}>${options}</select><small class="field-error" data-error-for="${name}" role="alert"></small></label>`;

function territoryName(id) {
  if (id == null) return '';
  const tr = view.territories.find((x) => x.id === id);
  return tr ? `${tr.name} (${tr.code})` : `#${id}`;
}

async function loadRefs() {
  const [tiers, territories] = await Promise.all([
    api.request('/tier-policies').catch(() => []),
    api.all('/territories').catch(() => []),
  ]);
  Object.assign(view, { tiers, territories });
}

/** The list for the current filter; an older answer arriving after a newer one is dropped. */
async function loadList() {
  const seq = ++view.seq;
  const page = await api.request(listPath(view.filter, PAGE));
  if (seq !== view.seq) return false;
  view.outlets = page.items ?? [];
  view.more = page.next != null;
  return true;
}

function draw(ctx) {
  const write = canWrite(ctx);
  const f = view.filter;
  view.el.innerHTML = `
    <h1>${esc(t('view_outlets'))}</h1>
    <form id="ol-filter" data-testid="outlet-filter" class="filters">
      <label class="field"><span>${esc(t('ol_search'))}</span><input name="q" type="search" value="${esc(f.q)}"></label>
      ${select('tier', 'tier', opt('', t('ol_any'), f.tier) + view.tiers.map((p) => opt(p.tier, p.tier, f.tier)).join(''))}
      ${select('status', 'status', opt('', t('ol_any'), f.status) + STATUSES.map((s) => opt(s, t(`ol_status_${s}`), f.status)).join(''))}
      ${select('territory', 'territory', opt('', t('ol_any'), f.territory) + view.territories.map((x) => opt(String(x.id), `${x.name} (${x.code})`, f.territory)).join(''))}
    </form>
    ${write ? newForm() + importForm() : `<p class="notice">${esc(t('ol_read_only'))}</p>`}
    <div id="ol-list"></div>
    <section id="ol-detail" data-testid="outlet" hidden></section>`;
  const filter = view.el.querySelector('#ol-filter');
  filter.addEventListener('submit', (e) => e.preventDefault());
  filter.addEventListener('input', () => applyFilter(filter, ctx));
  if (write) {
    view.el.querySelector('#ol-new-form').addEventListener('submit', (e) => createOutlet(e, ctx));
    wireImport(view.el.querySelector('#ol-import-form'), ctx);
  }
  drawList(ctx);
  if (view.selected) openOutlet(view.selected, ctx);
}

async function applyFilter(form, ctx) {
  const data = new FormData(form);
  view.filter = { q: data.get('q'), tier: data.get('tier'), status: data.get('status'), territory: data.get('territory') };
  try {
    if (await loadList()) drawList(ctx);
  } catch (err) {
    view.el.querySelector('#ol-list').innerHTML = `<p class="error" role="alert">${esc(err.detail || err.message)}</p>`;
  }
}

function drawList(ctx) {
  const rows = view.outlets.map((o) => `
    <tr data-outlet="${o.id}" data-testid="outlet-${esc(o.code)}" class="${o.status === 'active' ? '' : 'inactive'}">
      <td>${esc(o.code)}</td><td>${esc(o.name)}</td><td>${esc(o.tier)}</td><td>${esc(t(`ol_status_${o.status}`))}</td>
      <td>${esc(territoryName(o.territory_id))}</td><td><button type="button" data-open="${o.id}">${esc(t('ol_open'))}</button></td></tr>`).join('');
  const list = view.el.querySelector('#ol-list');
  list.innerHTML = `<table data-testid="outlets"><thead><tr><th>${esc(t('code'))}</th><th>${esc(t('name'))}</th><th>${esc(t('tier'))}</th>
    <th>${esc(t('status'))}</th><th>${esc(t('territory'))}</th><th></th></tr></thead><tbody>${rows}</tbody></table>
    ${view.outlets.length ? '' : `<p>${esc(t('ol_none'))}</p>`}${view.more ? `<p class="notice">${esc(t('ol_more'))}</p>` : ''}`;
  for (const b of list.querySelectorAll('[data-open]')) b.addEventListener('click', () => openOutlet(Number(b.dataset.open), ctx));
}

function newForm() {
  return `<details id="ol-new"><summary>${esc(t('ol_new'))}</summary>
    <form id="ol-new-form" data-testid="new-outlet">
      ${field({ name: 'code', label: 'code', attrs: 'required maxlength="64"' })}
      ${field({ name: 'name', label: 'name', attrs: 'required' })}
      ${select('channel_type', 'channel_type', channelOptions('business_hall'))}
      ${select('tier', 'tier', tierOptions(view.tiers[0]?.tier))}
      ${field({ name: 'lat', label: 'ol_lat', attrs: 'required inputmode="decimal"' })}
      ${field({ name: 'lon', label: 'ol_lon', attrs: 'required inputmode="decimal"' })}
      ${select('crs', 'ol_crs', crsOptions())}
      ${select('territory_id', 'territory', opt('', t('ol_territory_auto'), '') + view.territories.map((x) => opt(String(x.id), `${x.name} (${x.code})`, '')).join(''))}
      ${field({ name: 'address', label: 'ol_address' })}
      <button type="submit">${esc(t('ol_create'))}</button>
      <p class="field-error" data-error-for="" role="alert"></p>
    </form></details>`;
}

async function createOutlet(e, ctx) {
  e.preventDefault();
  const form = e.target;
  const data = new FormData(form);
  showErrors(form, null);
  const body = {
    code: data.get('code'), name: data.get('name'), channel_type: data.get('channel_type'), tier: data.get('tier'),
    lat: numberOf(data.get('lat')), lon: numberOf(data.get('lon')),
  };
  if (data.get('territory_id')) body.territory_id = Number(data.get('territory_id'));
  if (String(data.get('address')).trim()) body.address = String(data.get('address')).trim();
  try {
    const created = await api.request(withCrs('/outlets', data.get('crs')), { method: 'POST', json: body });
    view.selected = created.id;
    await loadList();
    draw(ctx);
  } catch (err) {
    showErrors(form, err);
  }
}

async function openOutlet(id, ctx) {
  view.selected = id;
  const box = view.el.querySelector('#ol-detail');
  let outlet;
  let history;
  try {
    [outlet, history] = await Promise.all([api.request(`/outlets/${id}`), api.request(`/outlets/${id}/history`)]);
  } catch (err) {
    box.hidden = false;
    box.innerHTML = `<p class="error" role="alert">${esc(err.detail || err.message)}</p>`;
    return;
  }
  if (view.selected !== id) return;
  Object.assign(view, { outlet, history });
  drawDetail(box, ctx);
}

function drawDetail(box, ctx) {
  const o = view.outlet;
  const write = canWrite(ctx);
  box.hidden = false;
  box.innerHTML = `
    <h2>${esc(o.name)} <small>${esc(o.code)} · ${esc(t(`ol_status_${o.status}`))}</small></h2>
    <div id="ol-map" class="outlet-map" data-testid="outlet-map"></div>
    ${write ? `<p><small>${esc(t('ol_drag_hint'))}</small></p>
    <form id="ol-edit" data-testid="edit-outlet">
      ${field({ name: 'name', label: 'name', value: o.name })}
      ${select('channel_type', 'channel_type', channelOptions(o.channel_type))}
      ${select('tier', 'tier', tierOptions(o.tier))}
      ${field({ name: 'address', label: 'ol_address', value: o.address ?? '' })}
      ${field({ name: 'radius_m', label: 'ol_radius', value: o.radius_m ?? '', attrs: 'inputmode="decimal"' })}
      <fieldset><legend>${esc(t('ol_position'))}</legend>
        ${field({ name: 'lat', label: 'ol_lat', value: o.lat, attrs: 'inputmode="decimal"' })}
        ${field({ name: 'lon', label: 'ol_lon', value: o.lon, attrs: 'inputmode="decimal"' })}
        ${select('crs', 'ol_crs', crsOptions())}
        <p data-testid="outlet-moved" role="status" hidden>${esc(t('ol_moved'))}</p></fieldset>
      <button type="submit">${esc(t('ol_save'))}</button>
      <p class="field-error" data-error-for="" role="alert"></p><p role="status" data-testid="outlet-saved"></p>
    </form>
    <form id="ol-status" data-testid="outlet-status">
      ${field({ name: 'reason', label: 'ol_status_reason' })}
      ${o.status === 'active' ? `<button type="button" data-status="suspend">${esc(t('ol_suspend'))}</button>` : `<button type="button" data-status="reopen">${esc(t('ol_reopen'))}</button>`}
      ${o.status === 'closed' ? '' : `<button type="button" data-status="close">${esc(t('ol_close'))}</button>`}
      <p class="field-error" data-error-for="" role="alert"></p>
    </form>` : `<p>${esc(t(`ol_ch_${o.channel_type}`))} · ${esc(o.tier)} · ${esc(positionText(o.lat, o.lon))}
      ${o.address ? ` · ${esc(o.address)}` : ''} · ${esc(territoryName(o.territory_id))}</p>`}
    <h3>${esc(t('ol_history'))}</h3>
    <table data-testid="outlet-history"><thead><tr><th></th><th>${esc(t('ol_valid'))}</th></tr></thead><tbody>
    ${historyRows(view.history).map((r) => (r.kind === 'location'
    ? `<tr data-kind="location" data-current="${r.to == null}"><td>${esc(t('ol_place'))}: ${esc(positionText(r.lat, r.lon))}</td>
        <td>${esc(when(r.from))} – ${r.to ? esc(when(r.to)) : esc(t('ol_now'))}</td></tr>`
    : `<tr data-kind="status"><td>${esc(t('ol_status_change'))}: ${esc(t(`ol_status_${r.status}`))}</td><td>${esc(when(r.from))}</td></tr>`)).join('')}
    </tbody></table>`;
  if (write) {
    const form = box.querySelector('#ol-edit');
    form.addEventListener('submit', (e) => saveOutlet(e, ctx));
    form.addEventListener('input', (e) => { if (['lat', 'lon', 'crs'].includes(e.target.name)) typedPosition(form); });
    for (const b of box.querySelectorAll('[data-status]')) b.addEventListener('click', () => changeStatus(b.dataset.status, box, ctx));
  }
  drawMap(box.querySelector('#ol-map'), o, write);
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : '';
}

/** The outlet on its own map; for writers its pin can be dragged (the form then holds the new WGS-84 position). */
async function drawMap(container, o, draggable) {
  view.map?.remove();
  Object.assign(view, { map: null, marker: null, mapLoaded: false });
  view.style ??= await baseStyle();
  if (!container.isConnected) return;
  const map = createMap({ container, style: view.style, center: [o.lon, o.lat], zoom: 16 });
  const marker = new maplibregl.Marker({ draggable, color: '#c62828' }).setLngLat([o.lon, o.lat]).addTo(map);
  marker.getElement().dataset.testid = 'outlet-pin';
  marker.on('dragend', () => {
    const form = view.el.querySelector('#ol-edit');
    if (!form) return;
    const { lng, lat } = marker.getLngLat();
    form.elements.lat.value = lat.toFixed(7);
    form.elements.lon.value = lng.toFixed(7);
    form.elements.crs.value = 'wgs84';
    form.querySelector('[data-testid=outlet-moved]').hidden = false;
  });
  map.on('load', () => { view.mapLoaded = true; });
  Object.assign(view, { map, marker });
}

/** Typed WGS-84 coordinates move the pin (coordinates of another system are converted by the server on save). */
function typedPosition(form) {
  const lat = numberOf(form.elements.lat.value);
  const lon = numberOf(form.elements.lon.value);
  const moved = lat != null && lon != null && (lat !== view.outlet.lat || lon !== view.outlet.lon);
  form.querySelector('[data-testid=outlet-moved]').hidden = !moved;
  if (moved && form.elements.crs.value === 'wgs84' && Math.abs(lat) <= 90 && Math.abs(lon) <= 180) {
    view.marker?.setLngLat([lon, lat]);
    view.map?.setCenter([lon, lat]);
  }
}

async function saveOutlet(e, ctx) {
  e.preventDefault();
  const form = e.target;
  const data = Object.fromEntries(new FormData(form));
  showErrors(form, null);
  const body = changes(view.outlet, data, data.crs);
  if (!Object.keys(body).length) {
    form.querySelector('[data-testid=outlet-saved]').textContent = t('ol_saved');
    return;
  }
  try {
    await api.request(withCrs(`/outlets/${view.outlet.id}`, data.crs), { method: 'PATCH', json: body });
  } catch (err) {
    showErrors(form, err);
    return;
  }
  await refreshSelected(ctx);
  view.el.querySelector('#ol-edit [data-testid=outlet-saved]').textContent = t('ol_saved');
}

async function changeStatus(action, box, ctx) {
  const form = box.querySelector('#ol-status');
  showErrors(form, null);
  const reason = String(form.elements.reason.value).trim();
  try {
    await api.request(`/outlets/${view.outlet.id}/${action}`, { method: 'POST', json: reason ? { reason } : {} });
  } catch (err) {
    showErrors(form, err);
    return;
  }
  await refreshSelected(ctx);
}

/** After a change: the list row and the open outlet (with its history) as stored now. */
async function refreshSelected(ctx) {
  await loadList();
  drawList(ctx);
  await openOutlet(view.selected, ctx);
}

function importForm() {
  return `<details id="ol-import"><summary>${esc(t('ol_import'))}</summary>
    <form id="ol-import-form" data-testid="import-outlets">
      <label class="field"><span>${esc(t('ol_file'))}</span><input id="ol-file" name="file" type="file" accept=".csv,.txt,.geojson,.json,text/csv,application/geo+json,application/json"></label>
      ${select('format', 'ol_format', opt('', t('ol_format_auto'), '') + opt('csv', 'CSV', '') + opt('geojson', 'GeoJSON', ''))}
      ${select('crs', 'ol_crs', crsOptions())}
      ${select('mode', 'ol_mode', opt('atomic', t('ol_mode_atomic'), 'atomic') + opt('partial', t('ol_mode_partial'), 'atomic'))}
      <button type="submit" data-testid="import-check">${esc(t('ol_check'))}</button>
      <p class="field-error" data-error-for="" role="alert"></p>
      <div data-testid="import-preview" hidden></div>
      <button type="button" data-testid="import-confirm" disabled>${esc(t('ol_confirm'))}</button>
      <p role="status" data-testid="import-result"></p>
    </form></details>`;
}

function wireImport(form, ctx) {
  // Any change of the file or of how it is read asks for a new check before anything is written.
  form.addEventListener('change', () => resetPreview(form));
  form.addEventListener('submit', (e) => { e.preventDefault(); checkFile(form); });
  form.querySelector('[data-testid=import-confirm]').addEventListener('click', () => confirmImport(form, ctx));
}

function resetPreview(form) {
  Object.assign(view, { preview: null, importText: null });
  const box = form.querySelector('[data-testid=import-preview]');
  box.hidden = true;
  box.innerHTML = '';
  form.querySelector('[data-testid=import-confirm]').disabled = true;
}

/** How the chosen file is sent: `{text, format, crs, mode}`, or null when no file is chosen. */
async function importRequest(form) {
  const file = form.elements.file.files[0];
  if (!file) return null;
  const format = formatOf(file.name, form.elements.format.value);
  return { text: await file.text(), format, crs: form.elements.crs.value, mode: form.elements.mode.value };
}

function postImport(req, dryRun) {
  return api.request(importPath({ ...req, dryRun }), {
    method: 'POST', body: req.text, headers: { 'Content-Type': contentTypeOf(req.format) },
  });
}

async function checkFile(form) {
  resetPreview(form);
  form.querySelector('[data-testid=import-result]').textContent = '';
  showErrors(form, null);
  const req = await importRequest(form);
  if (!req) {
    form.querySelector('[data-error-for=""]').textContent = t('ol_pick_file');
    return;
  }
  let report;
  try {
    report = await postImport(req, true);
  } catch (err) {
    // The file as a whole cannot be read (422): its errors are shown as the preview's.
    if (err.status !== 422) {
      showErrors(form, err);
      return;
    }
    report = { mode: req.mode, rows: 0, inserted: 0, updated: 0, unchanged: 0, rejected: 0, errors: err.errors, refused: err.detail };
  }
  Object.assign(view, { preview: report, importText: req });
  drawPreview(form, report);
}

function drawPreview(form, r) {
  const box = form.querySelector('[data-testid=import-preview]');
  const bad = badRows(r);
  box.hidden = false;
  box.innerHTML = `<h3>${esc(t('ol_preview'))}</h3>
    ${r.refused ? `<p class="error" role="alert">${esc(r.refused)}</p>` : ''}
    <p data-testid="import-counts">${['rows', 'inserted', 'updated', 'unchanged', 'rejected']
    .map((k) => `${esc(t(`ol_${k}`))}: <b data-count="${k}">${r[k] ?? 0}</b>`).join(' · ')}</p>
    ${bad.length ? `<table data-testid="import-errors"><thead><tr><th>${esc(t('ol_line'))}</th><th>${esc(t('ol_field'))}</th><th>${esc(t('reason'))}</th></tr></thead>
      <tbody>${bad.map((b) => `<tr data-row="${b.row ?? ''}" data-field="${esc(b.field)}"><td>${b.row ?? esc(t('ol_file_whole'))}</td>
        <td>${esc(b.field)}</td><td>${esc(b.reason)}</td></tr>`).join('')}</tbody></table>` : `<p>${esc(t('ol_no_bad_rows'))}</p>`}
    ${r.mode === 'atomic' && r.rejected ? `<p class="notice" data-testid="import-blocked">${esc(t('ol_fix_first'))}</p>` : ''}
    ${!r.refused && !(r.inserted + r.updated) ? `<p>${esc(t('ol_nothing'))}</p>` : ''}`;
  form.querySelector('[data-testid=import-confirm]').disabled = !canConfirm(r) || Boolean(r.refused);
}

async function confirmImport(form, ctx) {
  const req = view.importText;
  if (!req || !canConfirm(view.preview)) return;
  form.querySelector('[data-testid=import-confirm]').disabled = true;
  let report;
  try {
    report = await postImport(req, false);
  } catch (err) {
    showErrors(form, err);
    return;
  }
  view.imported = report;
  form.querySelector('[data-testid=import-result]').textContent = `${t('ol_imported')}: ${['inserted', 'updated', 'unchanged', 'rejected']
    .map((k) => `${t(`ol_${k}`)} ${report[k]}`).join(' · ')}`;
  await loadList();
  drawList(ctx);
}

registerView({
  id: 'outlets',
  label: 'view_outlets',
  roles: ['admin', 'manager', 'supervisor', 'auditor'],
  mount(el) {
    view.el = el;
  },
  async show(el, ctx) {
    await Promise.all([loadRefs(), loadList()]);
    draw(ctx);
  },
  translate() {
    if (view.el) draw(shared);
  },
});
