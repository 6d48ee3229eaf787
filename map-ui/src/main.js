// The managers' map: sign-in with a token, outlets by period status, H3 coverage, live positions
// and the replay of a rep's day, in English and Chinese, with no request leaving the server.
import maplibregl from 'maplibre-gl';
import { STRINGS } from './i18n.js';

const STATUSES = ['visited', 'due', 'overdue', 'never_visited', 'closed'];
// Okabe-Ito colours, and a shape per status so that it reads without colour too.
const STATUS_STYLE = {
  visited: { color: '#009E73', shape: 'circle' },
  due: { color: '#E69F00', shape: 'triangle' },
  overdue: { color: '#D55E00', shape: 'square' },
  never_visited: { color: '#CC79A7', shape: 'diamond' },
  closed: { color: '#666666', shape: 'cross' },
};
const VERDICT_COLOR = { verified: '#009E73', short: '#E69F00', unverified: '#56B4E9', suspect: '#D55E00' };
const COVERAGE_STOPS = [[0, '#f7fbff'], [25, '#c6dbef'], [50, '#6baed6'], [75, '#2171b5'], [100, '#08306b']];

const $ = (id) => document.getElementById(id);
let lang = sessionStorage.getItem('fv.lang') || ((navigator.language || '').startsWith('zh') ? 'zh' : 'en');
const t = (key) => STRINGS[lang][key] ?? key;
let token = sessionStorage.getItem('fv.token');
let map;
let me;
let replay = { frames: [], timer: null };
const state = { loaded: false, data: {} };
window.fieldvisit = state;

function applyLanguage() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $('lang').textContent = lang === 'zh' ? 'English' : '中文';
  $('lang').setAttribute('aria-label', t('language'));
  $('slider').setAttribute('aria-label', t('time'));
  renderLegend();
  const all = $('territory').querySelector('option[value=""]');
  if (all) all.textContent = t('all_territories');
  if (state.summary) renderSummary(state.summary);
  if (state.evidenceVisit && !$('evidence-panel').hidden) showEvidence(state.evidenceVisit.id);
  $('play').textContent = replay.timer ? t('pause') : t('play');
}

async function api(path, options = {}) {
  const res = await fetch(`/api/v1${path}`, { ...options, headers: { Authorization: `Bearer ${token}`, ...(options.headers || {}) } });
  if (!res.ok) {
    const problem = await res.json().catch(() => ({}));
    throw Object.assign(new Error(problem.detail || problem.title || res.statusText), { status: res.status });
  }
  return res.json();
}

function isoDay(d) { return d.toISOString().slice(0, 10); }
function period() { return `from=${$('from').value}&to=${$('to').value}`; }

/** Canvas-drawn status symbols (no sprite, no glyphs: the map works offline). */
function statusImage(status, size = 18) {
  const { color, shape } = STATUS_STYLE[status];
  const c = document.createElement('canvas');
  c.width = c.height = size;
  const g = c.getContext('2d');
  const m = size / 2, r = size / 2 - 2;
  g.fillStyle = color; g.strokeStyle = '#fff'; g.lineWidth = 2;
  g.beginPath();
  if (shape === 'circle') g.arc(m, m, r, 0, 2 * Math.PI);
  if (shape === 'square') g.rect(2, 2, size - 4, size - 4);
  if (shape === 'triangle') { g.moveTo(m, 1); g.lineTo(size - 1, size - 2); g.lineTo(1, size - 2); g.closePath(); }
  if (shape === 'diamond') { g.moveTo(m, 1); g.lineTo(size - 1, m); g.lineTo(m, size - 1); g.lineTo(1, m); g.closePath(); }
  if (shape === 'cross') { g.rect(m - 3, 1, 6, size - 2); g.rect(1, m - 3, size - 2, 6); }
  g.fill(); g.stroke();
  return c;
}

function renderLegend() {
  const rows = STATUSES.map((s) => `<div class="row" data-status="${s}"><img alt="" src="${statusImage(s).toDataURL()}"> ${t(s)}</div>`);
  const cov = COVERAGE_STOPS.map(([v, c]) => `<div class="row"><span class="swatch" style="background:${c};border:1px solid #999"></span> ${t('coverage_legend')} ≥ ${v}%</div>`);
  $('legend').innerHTML = rows.join('') + cov.join('');
}

function fmtPct(v) { return v == null ? '–' : `${v.toFixed(1)}%`; }

const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function hm(seconds) {
  const m = Math.round((seconds ?? 0) / 60);
  return `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}`;
}

/** The summary rows: [key, shown value] (the CSV download writes the same rows). */
function summaryRows(s) {
  const o = s.coverage.outlets;
  const p = s.compliance?.plan ?? {};
  return [
    ['plan_pct', fmtPct(p.plan_compliance_pct)], ['coverage_pct', fmtPct(o.coverage_pct)],
    ['frequency_pct', fmtPct(o.frequency_compliance_pct)], ['dwell_pct', fmtPct(o.dwell_compliance_pct)],
    ['time_in_market', hm(p.time_in_market_s)], ['suspect_visits', p.suspect_visits ?? '–'],
    ['verified_rate', fmtPct(p.verified_rate_pct)],
    ['active_outlets', o.active_outlets], ['visited_outlets', o.visited_outlets],
    ['white_space', s.coverage.h3?.white_space_cells ?? '–'],
    ...STATUSES.map((k) => [k, s.coverage.status_counts?.[k] ?? 0]),
  ];
}

function renderSummary(s) {
  state.summary = s;
  $('summary').innerHTML = summaryRows(s).map(([k, v]) => `<dt>${t(k)}</dt><dd data-key="${k}">${esc(v)}</dd>`).join('');
  // A small bar chart: outlet coverage by tier.
  const tiers = s.coverage.by_tier ?? [];
  const w = 240, bar = 14;
  const bars = tiers.map((g, i) => {
    const pct = g.coverage_pct ?? 0;
    return `<text x="0" y="${i * (bar + 4) + 11}" font-size="11">${esc(g.key)}</text>
      <rect x="40" y="${i * (bar + 4)}" width="${Math.max(1, (pct / 100) * (w - 90))}" height="${bar}" fill="#0072B2"></rect>
      <text x="${w - 45}" y="${i * (bar + 4) + 11}" font-size="11">${fmtPct(pct)}</text>`;
  }).join('');
  $('chart').innerHTML = tiers.length
    ? `<p>${t('coverage_by_tier')}</p><svg width="${w}" height="${tiers.length * (bar + 4)}" role="img">${bars}</svg>` : '';
}

function downloadCsv() {
  if (!state.summary) return;
  // Quoted; a leading = + - @ is defused so that a spreadsheet does not run it as a formula.
  const cell = (v) => `"${String(v).replace(/^([=+\-@])/, "'$1").replace(/"/g, '""')}"`;
  const lines = [[t('metric'), t('value')], [t('territory'), state.summary.coverage.code], [t('from'), $('from').value], [t('to'), $('to').value],
    ...summaryRows(state.summary).map(([k, v]) => [t(k), v])];
  const blob = new Blob([`\ufeff${lines.map((l) => l.map(cell).join(',')).join('\r\n')}\r\n`], { type: 'text/csv' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `fieldvisit-${state.summary.coverage.code}-${$('from').value}-${$('to').value}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

/** Sets a source's data and keeps it where tests and the panel can read it. */
function setData(source, fc) {
  state.data[source] = fc;
  map.getSource(source).setData(fc);
}

function emptyCollection() { return { type: 'FeatureCollection', features: [] }; }

async function baseStyle() {
  const config = await fetch('/config.json').then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  if (config.basemap_style) return config.basemap_style;
  return {
    version: 8,
    sources: {
      countries: { type: 'geojson', data: 'basemap/countries.geojson' },
      borders: { type: 'geojson', data: 'basemap/borders.geojson' },
    },
    layers: [
      { id: 'sea', type: 'background', paint: { 'background-color': '#cfe3f3' } },
      { id: 'land', type: 'fill', source: 'countries', paint: { 'fill-color': '#f3f1ea' } },
      { id: 'borders', type: 'line', source: 'borders', paint: { 'line-color': '#b9b4a6', 'line-width': 0.8 } },
    ],
  };
}

function addLayers() {
  for (const s of STATUSES) map.addImage(`status-${s}`, statusImage(s).getContext('2d').getImageData(0, 0, 18, 18));
  for (const id of ['territories', 'coverage', 'outlets', 'live', 'track', 'day-visits', 'evidence', 'replay-marker']) {
    map.addSource(id, { type: 'geojson', data: emptyCollection() });
  }
  const stops = COVERAGE_STOPS.flat();
  map.addLayer({ id: 'coverage', type: 'fill', source: 'coverage', paint: {
    'fill-color': ['interpolate', ['linear'], ['coalesce', ['get', 'coverage_pct'], 0], ...stops],
    'fill-opacity': 0.55, 'fill-outline-color': '#4a6f8a' } });
  map.addLayer({ id: 'territories', type: 'line', source: 'territories', paint: { 'line-color': '#12355b', 'line-width': 1.5 } });
  map.addLayer({ id: 'track', type: 'line', source: 'track', paint: { 'line-color': '#0072B2', 'line-width': 3 } });
  map.addLayer({ id: 'day-visits', type: 'circle', source: 'day-visits', paint: {
    'circle-radius': 7, 'circle-stroke-color': '#fff', 'circle-stroke-width': 2,
    'circle-color': ['match', ['get', 'verdict'], ...Object.entries(VERDICT_COLOR).flat(), '#999'] } });
  map.addLayer({ id: 'evidence', type: 'circle', source: 'evidence', paint: {
    'circle-radius': 4, 'circle-color': '#F0E442', 'circle-stroke-color': '#000', 'circle-stroke-width': 1 } });
  map.addLayer({ id: 'outlets', type: 'symbol', source: 'outlets', layout: {
    'icon-image': ['concat', 'status-', ['get', 'status']], 'icon-allow-overlap': true, 'icon-size': 0.9 } });
  map.addLayer({ id: 'live', type: 'circle', source: 'live', paint: {
    'circle-radius': 8, 'circle-color': '#0072B2', 'circle-stroke-color': '#fff', 'circle-stroke-width': 3 } });
  map.addLayer({ id: 'replay-marker', type: 'circle', source: 'replay-marker', paint: {
    'circle-radius': 9, 'circle-color': '#000', 'circle-stroke-color': '#F0E442', 'circle-stroke-width': 3 } });
  map.on('click', 'outlets', (e) => outletPopup(e.features[0], e.lngLat));
  map.on('click', 'coverage', (e) => {
    if (map.queryRenderedFeatures(e.point, { layers: ['outlets'] }).length) return;
    const p = e.features[0].properties;
    popup(e.lngLat, `<h3>${t('cell')} ${esc(p.cell)}</h3><dl><dt>${t('coverage_pct')}</dt><dd>${fmtPct(p.coverage_pct)}</dd>
      <dt>${t('active_outlets')}</dt><dd>${Number(p.active_outlets)}</dd><dt>${t('visited_outlets')}</dt><dd>${Number(p.visited_outlets)}</dd></dl>`);
  });
  map.on('click', 'day-visits', (e) => showEvidence(Number(e.features[0].id)));
  for (const l of ['outlets', 'coverage', 'day-visits']) {
    map.on('mouseenter', l, () => { map.getCanvas().style.cursor = 'pointer'; });
    map.on('mouseleave', l, () => { map.getCanvas().style.cursor = ''; });
  }
}

function popup(lngLat, html) {
  return new maplibregl.Popup({ className: 'popup', maxWidth: '280px' }).setLngLat(lngLat).setHTML(html).addTo(map);
}

function outletPopup(f, lngLat) {
  const p = f.properties;
  const required = Number(p.required_visits);
  popup(lngLat, `<div data-testid="outlet-popup" data-outlet="${f.id}"><h3>${esc(p.name)}</h3><dl>
    <dt>${t('code')}</dt><dd data-field="code">${esc(p.code)}</dd>
    <dt>${t('tier')}</dt><dd data-field="tier">${esc(p.tier)}</dd>
    <dt>${t('channel_type')}</dt><dd data-field="channel_type">${esc(p.channel_type)}</dd>
    <dt>${t('status')}</dt><dd data-field="status">${esc(t(p.status))}</dd>
    <dt>${t('last_visit')}</dt><dd data-field="last_valid_visit">${p.last_valid_visit && p.last_valid_visit !== 'null' ? esc(p.last_valid_visit) : t('none')}</dd>
    <dt>${t('visits_vs_required')}</dt><dd data-field="visits">${Number(p.valid_visits)} / ${Number.isInteger(required) ? required : required.toFixed(2)}</dd>
  </dl></div>`);
}

function boundsOf(fc) {
  let b = null;
  const walk = (c) => {
    if (typeof c[0] === 'number') {
      b = b ? [Math.min(b[0], c[0]), Math.min(b[1], c[1]), Math.max(b[2], c[0]), Math.max(b[3], c[1])] : [c[0], c[1], c[0], c[1]];
    } else c.forEach(walk);
  };
  fc.features.forEach((f) => f.geometry && walk(f.geometry.coordinates));
  return b;
}

let layerSeq = 0;

async function loadLayers() {
  const seq = ++layerSeq;
  const put = (source) => (fc) => { if (seq === layerSeq) setData(source, fc); };
  const b = map.getBounds();
  const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v, i) => Math.max(i % 2 ? -90 : -180, Math.min(i % 2 ? 90 : 180, v)).toFixed(5)).join(',');
  const jobs = [];
  if ($('show-outlets').checked) {
    jobs.push(api(`/layers/outlets?${period()}&bbox=${bbox}&limit=5000`).then(put('outlets')));
  } else setData('outlets', emptyCollection());
  if ($('show-coverage').checked) {
    jobs.push(api(`/layers/coverage?${period()}&bbox=${bbox}&h3_res=${$('h3-res').value}&limit=5000`).then(put('coverage')));
  } else setData('coverage', emptyCollection());
  await Promise.all(jobs);
}

let summarySeq = 0;

async function loadSummary() {
  const seq = ++summarySeq;
  const id = $('territory').value || me.user?.territory_id || state.rootTerritory;
  if (!id) { $('summary').innerHTML = ''; return; }
  const [coverage, compliance] = await Promise.all([
    api(`/territories/${id}/coverage?${period()}&h3_res=${$('h3-res').value}`),
    api(`/territories/${id}/compliance?${period()}`).catch(() => null),
  ]);
  if (seq === summarySeq) renderSummary({ coverage, compliance });
}

/** Layers follow the viewport; the summary only the period, territory and resolution. */
async function refresh({ summary = true } = {}) {
  try {
    await Promise.all([loadLayers(), summary ? loadSummary() : null]);
    state.loaded = true;
  } catch (e) { console.warn(e.message); }
}

/** Live positions: the `/live` event stream read with fetch (EventSource cannot send the token). */
let liveStarted = false;

async function followLive() {
  if (liveStarted) return;
  liveStarted = true;
  for (let wait = 1000; ; wait = Math.min(wait * 2, 30000)) {
    try {
      await readLive();
      wait = 1000;
    } catch (e) { console.warn(`live: ${e.message}`); }
    await new Promise((r) => setTimeout(r, wait));
  }
}

async function readLive() {
  const reps = new Map();
  const draw = () => setData('live', { type: 'FeatureCollection', features: [...reps.values()] });
  for (const p of await api('/live/positions').catch(() => [])) reps.set(p.device_id, point(p));
  draw();
  const res = await fetch('/api/v1/live', { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok || !res.body) throw new Error(`status ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(frame)?.[1];
      const data = /^data: (.*)$/m.exec(frame)?.[1];
      if (event === 'position' && data) { const p = JSON.parse(data); reps.set(p.device_id, point(p)); draw(); }
    }
  }
  function point(p) {
    return { type: 'Feature', id: p.device_id, geometry: { type: 'Point', coordinates: [p.lon, p.lat] }, properties: { rep_id: p.rep_id, fix_time: p.fix_time } };
  }
}

let daySeq = 0;

async function loadDay() {
  const rep = $('rep').value;
  const day = $('day').value;
  const seq = ++daySeq;
  stop();
  $('day-info').textContent = '';
  if (!rep || !day) return;
  try {
    await showDay(rep, day, seq);
  } catch (e) {
    console.warn(e.message);
    $('day-info').textContent = t('no_track');
  }
  if (seq === daySeq) state.dayLoaded = { rep: Number(rep), day, seq };
}

async function showDay(rep, day, seq) {
  const [track, visits, detail] = await Promise.all([
    api(`/reps/${rep}/track?date=${day}`, { headers: { Accept: 'application/geo+json' } }),
    api(`/layers/visits?from=${day}&to=${day}&rep_id=${rep}`).catch(() => emptyCollection()),
    api(`/reps/${rep}/visits?from=${day}&to=${day}`).catch(() => ({ visits: [] })),
  ]);
  if (seq !== daySeq) return;
  state.visits = new Map(detail.visits.map((v) => [v.id, v]));
  $('evidence-panel').hidden = true;
  setData('evidence', emptyCollection());
  const points = track.features.filter((f) => f.geometry?.type === 'Point').sort((a, b) => Date.parse(a.properties.fix_time) - Date.parse(b.properties.fix_time));
  replay.frames = points;
  state.frames = points.map((f) => f.geometry.coordinates);
  setData('track', { type: 'FeatureCollection', features: track.features.filter((f) => f.geometry && f.geometry.type !== 'Point') });
  setData('day-visits', visits);
  $('player').hidden = points.length === 0;
  $('day-info').textContent = points.length ? `${points.length} ${t('pings')}, ${visits.features.length} ${t('visits')}` : t('no_track');
  $('slider').max = Math.max(0, points.length - 1);
  $('slider').value = 0;
  showFrame(0);
  const b = boundsOf(track);
  if (b) map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 40, duration: 0 });
}

function showFrame(i) {
  const f = replay.frames[i];
  if (!f) { setData('replay-marker', emptyCollection()); $('clock').textContent = ''; return; }
  setData('replay-marker', { type: 'FeatureCollection', features: [{ type: 'Feature', geometry: f.geometry, properties: {} }] });
  $('clock').textContent = new Date(f.properties.fix_time).toLocaleTimeString(lang === 'zh' ? 'zh-CN' : 'en-GB');
  state.marker = f.geometry.coordinates;
}

/** A visit's evidence: its figures in the panel, its fixes on the map; review buttons for reviewers. */
function showEvidence(id) {
  const v = state.visits?.get(id);
  if (!v) return;
  state.evidenceVisit = v;
  const flags = Object.entries(v.evidence?.signals ?? {}).filter(([, x]) => x === true || x > 0).map(([k, x]) => (x === true ? t(k) : `${t(k)} ${x}`));
  const time = (x) => new Date(x).toLocaleTimeString(lang === 'zh' ? 'zh-CN' : 'en-GB');
  const metres = (x) => (x == null ? '–' : `${Math.round(x)} ${t('m')}`);
  const rows = [
    ['outlet', `${v.outlet_code} ${v.outlet_name}`], ['verdict', t(v.verdict)], ['arrival', time(v.arrival)], ['departure', time(v.departure)],
    ['dwell', `${Math.round(v.dwell_s / 60)} ${t('min')}`], ['ping_count', v.ping_count], ['min_distance', metres(v.min_distance_m)],
    ['median_distance', metres(v.median_distance_m)], ['median_accuracy', metres(v.median_accuracy_m)],
    ['max_gap', `${v.max_gap_s ?? '–'} ${t('s')}`], ['flags', flags.length ? flags.join(', ') : t('none')], ['rule_version', v.rule_version],
  ];
  $('evidence').innerHTML = rows.map(([k, x]) => `<dt>${t(k)}</dt><dd data-key="${k}">${esc(x)}</dd>`).join('');
  $('evidence-panel').hidden = false;
  $('review').hidden = !['supervisor', 'auditor', 'admin'].includes(me.user?.role);
  $('review-result').textContent = '';
  const [from, to] = [Date.parse(v.arrival), Date.parse(v.departure)];
  const inWindow = replay.frames.filter((f) => Date.parse(f.properties.fix_time) >= from && Date.parse(f.properties.fix_time) <= to);
  setData('evidence', { type: 'FeatureCollection', features: inWindow });
}

async function review(decision) {
  const v = state.evidenceVisit;
  const reason = $('review-reason').value.trim();
  if (!v) return;
  if (!reason) { $('review-result').textContent = t('reason_needed'); return; }
  try {
    await api(`/visits/${v.id}/reviews`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ decision, reason }) });
    $('review-result').textContent = `${t('reviewed')}: ${t(decision)}`;
    state.reviewed = { id: v.id, decision };
  } catch (e) {
    $('review-result').textContent = e.message;
  }
}

/** MapLibre's own control labels in the page language. */
function controlLocale() {
  return {
    'NavigationControl.ZoomIn': t('zoom_in'), 'NavigationControl.ZoomOut': t('zoom_out'),
    'NavigationControl.ResetBearing': t('reset_bearing'), 'AttributionControl.ToggleAttribution': t('attribution'),
    'Popup.Close': t('close'),
  };
}

function stop() { clearInterval(replay.timer); replay.timer = null; $('play').textContent = t('play'); }

function togglePlay() {
  if (replay.timer) { stop(); return; }
  replay.timer = setInterval(() => {
    const next = Number($('slider').value) + 1;
    if (next >= replay.frames.length) { stop(); return; }
    $('slider').value = next;
    showFrame(next);
  }, 100);
  $('play').textContent = t('pause');
}

async function start() {
  try {
    me = await api('/me');
  } catch (e) {
    if (e.status === 401) {
      sessionStorage.removeItem('fv.token');
      token = null;
    }
    $('signin-error').textContent = e.status === 401 ? t('bad_token') : t('server_unreachable');
    return;
  }
  $('signin').hidden = true;
  $('app').hidden = false;
  $('signout').hidden = false;
  $('who').textContent = `${me.user?.name ?? t('device')} · ${me.org.name}`;
  const today = new Date();
  const yesterday = new Date(today.getTime() - 86400000);
  $('to').value = isoDay(today);
  $('from').value = isoDay(new Date(today.getTime() - 27 * 86400000));
  $('day').value = isoDay(yesterday);
  const [territories, users, territoryLayer] = await Promise.all([
    api('/territories?limit=1000').catch(() => ({ items: [] })),
    api('/users?limit=1000').catch(() => ({ items: [] })),
    api('/layers/territories?zoom=10&limit=5000').catch(() => emptyCollection()),
  ]);
  $('territory').innerHTML = `<option value="">${t('all_territories')}</option>` +
    (territories.items || []).map((x) => `<option value="${x.id}">${esc(x.code)} ${esc(x.name)}</option>`).join('');
  state.rootTerritory = (territories.items || []).find((x) => x.parent_id == null)?.id;
  $('rep').innerHTML = (users.items || []).filter((u) => u.role === 'rep').map((u) => `<option value="${u.id}">${esc(u.name)}</option>`).join('');
  map = new maplibregl.Map({ container: 'map', locale: controlLocale(), style: await baseStyle(), center: [116.4, 39.9], zoom: 9, attributionControl: { compact: true, customAttribution: 'Natural Earth' } });
  map.addControl(new maplibregl.NavigationControl(), 'top-right');
  window.fieldvisitMap = map;
  map.on('load', async () => {
    addLayers();
    setData('territories', territoryLayer);
    const b = boundsOf(territoryLayer);
    if (b) map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 20, duration: 0 });
    map.on('moveend', () => refresh({ summary: false }));
    await refresh();
    if ($('show-live').checked) followLive();
  });
}

$('signin').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token').value.trim();
  sessionStorage.setItem('fv.token', token);
  start();
});
$('signout').addEventListener('click', () => { sessionStorage.removeItem('fv.token'); location.reload(); });
$('lang').addEventListener('click', () => { lang = lang === 'zh' ? 'en' : 'zh'; sessionStorage.setItem('fv.lang', lang); applyLanguage(); });
for (const id of ['from', 'to', 'h3-res', 'show-outlets', 'show-coverage']) $(id).addEventListener('change', refresh);
$('territory').addEventListener('change', async () => {
  const id = $('territory').value;
  if (id) {
    const fc = await api(`/layers/territories?zoom=10&limit=5000`).catch(() => emptyCollection());
    const mine = { type: 'FeatureCollection', features: fc.features.filter((f) => String(f.id) === id || String(f.properties.parent_id) === id) };
    const b = boundsOf(mine);
    if (b) map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 20, duration: 0 });
  }
  loadSummary().catch((e) => console.warn(e.message));
});
$('show-live').addEventListener('change', () => {
  map.setLayoutProperty('live', 'visibility', $('show-live').checked ? 'visible' : 'none');
  if ($('show-live').checked) followLive();
});
$('load-day').addEventListener('click', loadDay);
$('slider').addEventListener('input', () => showFrame(Number($('slider').value)));
$('play').addEventListener('click', togglePlay);
$('accept').addEventListener('click', () => review('accepted'));
$('reject').addEventListener('click', () => review('rejected'));
$('csv').addEventListener('click', downloadCsv);
applyLanguage();
if (token) start();
