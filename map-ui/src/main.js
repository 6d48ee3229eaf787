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
  if (state.plan) renderPlan();
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

/** Every item of a paged list (`next` cursor), up to `max`. */
async function all(path, max = 20000) {
  const items = [];
  for (let after = null; items.length < max;) {
    const page = await api(`${path}${path.includes('?') ? '&' : '?'}limit=1000${after == null ? '' : `&after=${after}`}`);
    items.push(...(page.items ?? []));
    if (page.next == null) break;
    after = page.next;
  }
  return items;
}

/** Reps see their own day and figures; the team views (outlets, coverage, territories) are for the others. */
const isRep = () => me?.user?.role === 'rep';

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

/** A numbered marker: `plan` a white square (planned stop), `visit` a bare number (actual order). */
function numberImage(kind, n) {
  const size = kind === 'plan' ? 22 : 18;
  const c = document.createElement('canvas');
  c.width = c.height = size;
  const g = c.getContext('2d');
  if (kind === 'plan') {
    g.fillStyle = '#fff'; g.strokeStyle = '#12355b'; g.lineWidth = 2;
    g.fillRect(1, 1, size - 2, size - 2); g.strokeRect(1, 1, size - 2, size - 2);
  }
  g.fillStyle = kind === 'plan' ? '#12355b' : '#fff';
  g.font = `bold ${n > 9 ? 10 : 12}px sans-serif`;
  g.textAlign = 'center'; g.textBaseline = 'middle';
  g.fillText(String(n), size / 2, size / 2 + 1);
  return g.getImageData(0, 0, size, size);
}

function renderLegend() {
  const rows = STATUSES.map((s) => `<div class="row" data-status="${s}"><img alt="" src="${statusImage(s).toDataURL()}"> ${t(s)}</div>`);
  const cov = COVERAGE_STOPS.map(([v, c]) => `<div class="row"><span class="swatch" style="background:${c};border:1px solid #999"></span> ${t('coverage_legend')} ≥ ${v}%</div>`);
  const verdicts = Object.entries(VERDICT_COLOR).map(([k, c]) => `<div class="row" data-verdict="${k}"><span class="swatch dot" style="background:${c}"></span> ${t('visit')}: ${t(k)}</div>`);
  const plan = `<div class="row"><span class="swatch plan">1</span> ${t('planned_stop')}</div>`;
  $('legend').innerHTML = rows.join('') + cov.join('') + verdicts.join('') + plan;
}

function fmtPct(v) { return v == null ? '–' : `${v.toFixed(1)}%`; }

const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function hm(seconds) {
  const m = Math.round((seconds ?? 0) / 60);
  return `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}`;
}

/** The summary rows: [key, shown value] (the CSV download writes the same rows). */
function summaryRows(s) {
  if (s.rep) {
    const p = s.rep.totals;
    return [
      ['plan_pct', fmtPct(p.plan_compliance_pct)], ['planned', p.planned], ['done', p.done], ['late', p.late],
      ['short', p.short], ['missed', p.missed], ['visit_count', p.visits], ['unplanned', p.unplanned_visits],
      ['time_in_market', hm(p.time_in_market_s)], ['suspect_visits', p.suspect_visits], ['verified_rate', fmtPct(p.verified_rate_pct)],
    ];
  }
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

/** What the summary is of: a territory (code and name) or the signed-in rep. */
function summaryScope(s) {
  return s.rep ? me.user.name : `${s.coverage.code} ${s.coverage.name ?? ''}`.trim();
}

/** A small horizontal bar chart: rows of [label, value, max, shown text, colour, icon]. */
function barChart(id, title, rows) {
  if (!rows.length) return '';
  const w = 260, bar = 14, left = 90;
  const body = rows.map(([label, value, max, text, colour, icon], i) => {
    const y = i * (bar + 4);
    const width = max > 0 ? Math.max(1, (value / max) * (w - left - 50)) : 1;
    return `${icon ? `<image href="${icon}" x="0" y="${y}" width="14" height="14"></image>` : ''}
      <text x="${icon ? 18 : 0}" y="${y + 11}" font-size="11">${esc(label)}</text>
      <rect x="${left}" y="${y}" width="${width}" height="${bar}" fill="${colour}"></rect>
      <text x="${w - 45}" y="${y + 11}" font-size="11">${esc(text)}</text>`;
  }).join('');
  return `<figure data-chart="${id}"><figcaption>${esc(title)}</figcaption><svg width="${w}" height="${rows.length * (bar + 4)}" role="img" aria-label="${esc(title)}">${body}</svg></figure>`;
}

function renderSummary(s) {
  state.summary = s;
  $('summary-scope').textContent = summaryScope(s);
  $('summary').innerHTML = summaryRows(s).map(([k, v]) => `<dt>${t(k)}</dt><dd data-key="${k}">${esc(v)}</dd>`).join('');
  const cut = (x) => (x.length > 12 ? `${x.slice(0, 11)}…` : x);
  if (s.rep) {
    // Plan compliance per day of the period.
    const days = s.rep.days.filter((d) => d.planned > 0);
    $('chart').innerHTML = barChart('plan-by-day', t('plan_by_day'), days.map((d) => [d.day.slice(5), d.plan_compliance_pct ?? 0, 100, fmtPct(d.plan_compliance_pct), '#0072B2']));
    return;
  }
  const tiers = s.coverage.by_tier ?? [];
  const counts = s.coverage.status_counts ?? {};
  const most = Math.max(0, ...STATUSES.map((k) => counts[k] ?? 0));
  // The reps furthest behind their plan first.
  const reps = (s.compliance?.reps ?? []).filter((r) => r.totals.planned > 0)
    .sort((a, b) => (a.totals.plan_compliance_pct ?? 0) - (b.totals.plan_compliance_pct ?? 0)).slice(0, 10);
  $('chart').innerHTML = [
    barChart('coverage-by-tier', t('coverage_by_tier'), tiers.map((g) => [g.key, g.coverage_pct ?? 0, 100, fmtPct(g.coverage_pct), '#0072B2'])),
    barChart('outlets-by-status', t('outlets_by_status'), STATUSES.map((k) => [t(k), counts[k] ?? 0, most, String(counts[k] ?? 0), STATUS_STYLE[k].color, statusImage(k, 14).toDataURL()])),
    barChart('plan-by-rep', t('plan_by_rep'), reps.map((r) => [cut(r.name), r.totals.plan_compliance_pct ?? 0, 100, fmtPct(r.totals.plan_compliance_pct), '#56B4E9'])),
  ].join('');
}

function downloadCsv() {
  if (!state.summary) return;
  // Quoted; a leading = + - @ is defused so that a spreadsheet does not run it as a formula.
  const cell = (v) => `"${String(v).replace(/^([=+\-@])/, "'$1").replace(/"/g, '""')}"`;
  const scope = state.summary.rep ? [t('rep'), me.user.login] : [t('territory'), state.summary.coverage.code];
  const lines = [[t('metric'), t('value')], scope, [t('from'), $('from').value], [t('to'), $('to').value],
    ...summaryRows(state.summary).map(([k, v]) => [t(k), v])];
  const blob = new Blob([`\ufeff${lines.map((l) => l.map(cell).join(',')).join('\r\n')}\r\n`], { type: 'text/csv' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `fieldvisit-${scope[1]}-${$('from').value}-${$('to').value}.csv`;
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
  // Numbered markers are drawn when the map first asks for one (`plan-3`, `visit-7`).
  map.on('styleimagemissing', (e) => {
    const m = /^(plan|visit)-(\d+)$/.exec(e.id);
    if (m && !map.hasImage(e.id)) map.addImage(e.id, numberImage(m[1], Number(m[2])));
  });
  for (const id of ['territories', 'coverage', 'outlets', 'live', 'route', 'track', 'day-visits', 'evidence', 'replay-marker']) {
    map.addSource(id, { type: 'geojson', data: emptyCollection() });
  }
  const stops = COVERAGE_STOPS.flat();
  // Bottom to top: area figures, outlets, then the rep's day (plan, track, visits) and the live reps.
  map.addLayer({ id: 'coverage', type: 'fill', source: 'coverage', paint: {
    'fill-color': ['interpolate', ['linear'], ['coalesce', ['get', 'coverage_pct'], 0], ...stops],
    'fill-opacity': 0.55, 'fill-outline-color': '#4a6f8a' } });
  map.addLayer({ id: 'territories', type: 'line', source: 'territories', paint: { 'line-color': '#12355b', 'line-width': 1.5 } });
  map.addLayer({ id: 'outlets', type: 'symbol', source: 'outlets', layout: {
    'icon-image': ['concat', 'status-', ['get', 'status']], 'icon-allow-overlap': true, 'icon-size': 0.9 } });
  map.addLayer({ id: 'route', type: 'line', source: 'route', filter: ['==', ['geometry-type'], 'LineString'],
    paint: { 'line-color': '#12355b', 'line-width': 2, 'line-dasharray': [2, 2] } });
  map.addLayer({ id: 'track', type: 'line', source: 'track', paint: { 'line-color': '#0072B2', 'line-width': 3 } });
  map.addLayer({ id: 'plan-stops', type: 'symbol', source: 'route', filter: ['==', ['geometry-type'], 'Point'], layout: {
    'icon-image': ['concat', 'plan-', ['to-string', ['get', 'seq']]], 'icon-allow-overlap': true, 'icon-offset': [14, -14] } });
  map.addLayer({ id: 'day-visits', type: 'circle', source: 'day-visits', paint: {
    'circle-radius': 9, 'circle-stroke-color': '#fff', 'circle-stroke-width': 2,
    'circle-color': ['match', ['get', 'verdict'], ...Object.entries(VERDICT_COLOR).flat(), '#999'] } });
  map.addLayer({ id: 'visit-order', type: 'symbol', source: 'day-visits', layout: {
    'icon-image': ['concat', 'visit-', ['to-string', ['get', 'order']]], 'icon-allow-overlap': true } });
  map.addLayer({ id: 'evidence', type: 'circle', source: 'evidence', paint: {
    'circle-radius': 4, 'circle-color': '#F0E442', 'circle-stroke-color': '#000', 'circle-stroke-width': 1 } });
  map.addLayer({ id: 'live', type: 'circle', source: 'live', paint: {
    'circle-radius': 8, 'circle-color': '#0072B2', 'circle-stroke-color': '#fff', 'circle-stroke-width': 3 } });
  map.addLayer({ id: 'replay-marker', type: 'circle', source: 'replay-marker', paint: {
    'circle-radius': 9, 'circle-color': '#000', 'circle-stroke-color': '#F0E442', 'circle-stroke-width': 3 } });
  // One click, one answer: the topmost thing under the pointer (a visit before its outlet).
  const clickable = ['visit-order', 'day-visits', 'outlets', 'coverage'];
  map.on('click', (e) => {
    const [f] = map.queryRenderedFeatures(e.point, { layers: clickable.filter((l) => map.getLayer(l)) });
    if (!f) return;
    if (f.layer.id === 'day-visits' || f.layer.id === 'visit-order') showEvidence(Number(f.id));
    else if (f.layer.id === 'outlets') outletPopup(f, e.lngLat);
    else {
      const p = f.properties;
      popup(e.lngLat, `<h3>${t('cell')} ${esc(p.cell)}</h3><dl><dt>${t('coverage_pct')}</dt><dd>${fmtPct(p.coverage_pct)}</dd>
        <dt>${t('active_outlets')}</dt><dd>${Number(p.active_outlets)}</dd><dt>${t('visited_outlets')}</dt><dd>${Number(p.visited_outlets)}</dd></dl>`);
    }
  });
  for (const l of clickable) {
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
  if (isRep()) return;
  if ($('show-outlets').checked) {
    jobs.push(api(`/layers/outlets?${period()}&bbox=${bbox}&limit=5000`).then(put('outlets')));
  } else setData('outlets', emptyCollection());
  if ($('show-coverage').checked) {
    jobs.push(api(`/layers/coverage?${period()}&bbox=${bbox}&h3_res=${$('h3-res').value}&limit=5000`).then(put('coverage')));
  } else setData('coverage', emptyCollection());
  await Promise.all(jobs);
  // A layer capped at its limit says so: the map is not showing everything there.
  $('truncated').hidden = !['outlets', 'coverage'].some((k) => state.data[k]?.truncated);
}

let summarySeq = 0;

async function loadSummary() {
  const seq = ++summarySeq;
  if (isRep()) {
    const rep = await api(`/reps/${me.user.id}/compliance?${period()}`);
    if (seq === summarySeq) renderSummary({ rep });
    return;
  }
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
  const [track, detail, plan, compliance] = await Promise.all([
    api(`/reps/${rep}/track?date=${day}`, { headers: { Accept: 'application/geo+json' } }),
    api(`/reps/${rep}/visits?from=${day}&to=${day}`).catch(() => ({ visits: [] })),
    api(`/reps/${rep}/plan?date=${day}`).catch(() => ({ visits: [] })),
    api(`/reps/${rep}/compliance?from=${day}&to=${day}`).catch(() => ({ days: [] })),
  ]);
  if (seq !== daySeq) return;
  // Visits numbered in arrival order: the order the rep actually went round.
  const ordered = [...detail.visits].sort((x, y) => Date.parse(x.arrival) - Date.parse(y.arrival));
  state.visits = new Map(ordered.map((v, i) => [v.id, { ...v, order: i + 1 }]));
  const visits = { type: 'FeatureCollection', features: [...state.visits.values()].filter((v) => Number.isFinite(v.evidence?.lat)).map((v) => ({
    type: 'Feature', id: v.id, geometry: { type: 'Point', coordinates: [v.evidence.lon, v.evidence.lat] },
    properties: { verdict: v.verdict, order: v.order, outlet_id: v.outlet_id, arrival: v.arrival } })) };
  $('evidence-panel').hidden = true;
  setData('evidence', emptyCollection());
  const points = track.features.filter((f) => f.geometry?.type === 'Point').sort((a, b) => Date.parse(a.properties.fix_time) - Date.parse(b.properties.fix_time));
  replay.frames = points;
  state.frames = points.map((f) => f.geometry.coordinates);
  setData('track', { type: 'FeatureCollection', features: track.features.filter((f) => f.geometry && f.geometry.type !== 'Point') });
  setData('day-visits', visits);
  const stops = [...(plan.visits ?? [])].sort((x, y) => x.seq - y.seq);
  setData('route', { type: 'FeatureCollection', features: [
    ...(stops.length > 1 ? [{ type: 'Feature', geometry: { type: 'LineString', coordinates: stops.map((p) => [p.lon, p.lat]) }, properties: {} }] : []),
    ...stops.map((p, i) => ({ type: 'Feature', id: p.planned_visit_id, geometry: { type: 'Point', coordinates: [p.lon, p.lat] }, properties: { seq: i + 1, outlet_id: p.outlet_id } })),
  ] });
  state.plan = planVsActual(stops, compliance.days?.find((d) => d.day === day)?.planned_visits ?? []);
  renderPlan();
  $('player').hidden = points.length === 0;
  $('day-info').textContent = points.length ? `${points.length} ${t('pings')}, ${visits.features.length} ${t('visits')}` : t('no_track');
  $('slider').max = Math.max(0, points.length - 1);
  $('slider').value = 0;
  showFrame(0);
  const b = boundsOf({ features: [...track.features, ...stops.map((p) => ({ geometry: { coordinates: [p.lon, p.lat] } }))] });
  if (b) map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 40, duration: 0 });
}

/** Longest run of `xs` that increases (not necessarily adjacent): the stops done in planned order. */
function increasingRun(xs) {
  const tails = [];
  for (const x of xs) {
    let lo = 0, hi = tails.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (tails[mid] < x) lo = mid + 1; else hi = mid; }
    tails[lo] = x;
  }
  return tails.length;
}

/**
 * The day's plan beside what happened: each planned stop in route order with its outcome and the
 * actual order of the visit that answered it, then the unplanned visits.
 */
function planVsActual(stops, results) {
  const byPlanned = new Map(results.map((r) => [r.planned_visit_id, r]));
  const answered = new Set();
  const rows = stops.map((p, i) => {
    const r = byPlanned.get(p.planned_visit_id);
    const v = r?.visit_id != null ? state.visits.get(r.visit_id) : null;
    if (v) answered.add(v.id);
    return { planned: i + 1, outlet: `${p.outlet_code} ${p.outlet_name}`, window: [p.window_start, p.window_end], outcome: r?.outcome ?? 'missed', visit: v };
  });
  const unplanned = [...state.visits.values()].filter((v) => !answered.has(v.id))
    .map((v) => ({ planned: null, outlet: `${v.outlet_code} ${v.outlet_name}`, window: [null, null], outcome: 'unplanned', visit: v }));
  const actual = rows.filter((r) => r.visit).map((r) => r.visit.order);
  return { rows: [...rows, ...unplanned], inOrder: increasingRun(actual), matched: actual.length, planned: stops.length };
}

function renderPlan() {
  const p = state.plan;
  if (!p || (p.rows.length === 0)) { $('plan').innerHTML = ''; return; }
  const time = (x) => (x ? new Date(x).toLocaleTimeString(lang === 'zh' ? 'zh-CN' : 'en-GB', { hour: '2-digit', minute: '2-digit' }) : '');
  const body = p.rows.map((r) => `<tr data-outcome="${r.outcome}"${r.visit ? ` data-visit="${r.visit.id}" tabindex="0"` : ''}>
      <td data-col="planned">${r.planned ?? '–'}</td><td data-col="actual">${r.visit?.order ?? '–'}</td>
      <td>${esc(r.outlet)}${r.window[0] || r.window[1] ? `<br><small>${time(r.window[0])}–${time(r.window[1])}</small>` : ''}</td>
      <td data-col="outcome">${esc(t(r.outcome))}${r.visit ? `<br><small>${time(r.visit.arrival)}</small>` : ''}</td></tr>`).join('');
  $('plan').innerHTML = `<p data-testid="plan-order">${t('in_planned_order')}: ${p.inOrder} / ${p.planned}</p>
    <table><thead><tr><th>${t('planned_no')}</th><th>${t('actual_no')}</th><th>${t('outlet')}</th><th>${t('outcome')}</th></tr></thead><tbody>${body}</tbody></table>`;
  $('plan').querySelectorAll('tr[data-visit]').forEach((tr) => {
    const open = () => showEvidence(Number(tr.dataset.visit));
    tr.addEventListener('click', open);
    tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
  });
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
    ['actual_no', v.order ?? '–'], ['planned_no', state.plan?.rows.find((r) => r.visit?.id === v.id)?.planned ?? t('unplanned')],
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
  showVisitExtras(v).catch((e) => { $('visit-photos').textContent = e.message; });
}

/** The visit's photos (thumbnails, fetched with the token, and what each shows) and checklist answers. */
async function showVisitExtras(v) {
  for (const url of state.photoUrls ?? []) URL.revokeObjectURL(url);
  state.photoUrls = [];
  $('visit-photos').innerHTML = '';
  $('visit-answers').innerHTML = '';
  const [photos, outcomes] = await Promise.all([api(`/visits/${v.id}/photos`), api(`/visits/${v.id}/outcomes`)]);
  if (state.evidenceVisit !== v) return;
  const time = (x) => (x ? new Date(x).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB') : '–');
  const cards = await Promise.all(photos.map(async (p) => {
    let img = '';
    if (p.has_thumbnail) {
      const res = await fetch(`/api/v1/photos/${p.id}/thumbnail`, { headers: { Authorization: `Bearer ${token}` } });
      if (res.ok) {
        const url = URL.createObjectURL(await res.blob());
        state.photoUrls.push(url);
        img = `<img src="${url}" alt="${esc(t('photos'))} ${p.id}" width="96">`;
      }
    }
    const f = p.findings ?? {};
    const notes = [t(f.verdict ?? 'unverifiable')];
    if (f.distance_m != null) notes.push(`${Math.round(f.distance_m)} ${t('m')}`);
    if (f.far) notes.push(t('far'));
    if (p.reused_photo_id != null) notes.push(`${t('reused')} (#${p.reused_photo_id})`);
    return `<figure data-photo="${p.id}" data-verdict="${esc(f.verdict ?? '')}">${img}<figcaption>${esc(notes.join(', '))}<br>${esc(t('taken'))}: ${esc(time(p.taken_at))}</figcaption></figure>`;
  }));
  if (state.evidenceVisit !== v) return;
  $('visit-photos').innerHTML = `<h3>${esc(t('photos'))}</h3>${cards.length ? cards.join('') : `<p>${esc(t('no_photos'))}</p>`}`;
  const rows = outcomes.map((o) => {
    const answers = Object.entries(o.answers ?? {}).map(([k, x]) => {
      const bad = (o.problems ?? []).includes(k);
      return `<li${bad ? ' class="problem"' : ''} data-key="${esc(k)}">${esc(k)}: ${esc(Array.isArray(x) ? x.join(', ') : String(x))}</li>`;
    });
    return `<div data-outcome="${o.id}"><strong>${esc(o.checklist_name)} v${esc(o.checklist_version)}</strong><ul>${answers.join('')}</ul></div>`;
  });
  $('visit-answers').innerHTML = `<h3>${esc(t('answers'))}</h3>${rows.length ? rows.join('') : `<p>${esc(t('no_answers'))}</p>`}`;
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
  if (me.kind === 'device') {
    // A phone's credential only posts fixes and reads its plan: the map needs a person's token.
    $('signin-error').textContent = t('device_token');
    return;
  }
  $('signin').hidden = true;
  $('app').hidden = false;
  document.querySelectorAll('.team-only').forEach((el) => { el.hidden = isRep(); });
  $('signout').hidden = false;
  $('who').textContent = `${me.user?.name ?? t('device')} · ${me.org.name}`;
  const today = new Date();
  const yesterday = new Date(today.getTime() - 86400000);
  $('to').value = isoDay(today);
  $('from').value = isoDay(new Date(today.getTime() - 27 * 86400000));
  $('day').value = isoDay(yesterday);
  const team = !isRep();
  const [territories, users, territoryLayer] = await Promise.all([
    team ? all('/territories').catch(() => []) : [],
    team ? all('/users').catch(() => []) : [me.user],
    team ? api('/layers/territories?zoom=10&limit=5000').catch(() => emptyCollection()) : emptyCollection(),
  ]);
  // "All in my scope" is the caller's own territory, or the org's top territory; with several
  // top territories each is listed first so that the summary can be read for each.
  const ids = new Set(territories.map((x) => x.id));
  const roots = territories.filter((x) => x.parent_id == null || !ids.has(x.parent_id));
  state.rootTerritory = roots[0]?.id;
  const rest = territories.filter((x) => !roots.includes(x));
  $('territory').innerHTML = `<option value="">${t('all_territories')}</option>` +
    [...roots, ...rest].map((x) => `<option value="${x.id}">${esc(x.code)} ${esc(x.name)}</option>`).join('');
  $('rep').innerHTML = users.filter((u) => u.role === 'rep').map((u) => `<option value="${u.id}">${esc(u.name)}</option>`).join('');
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
    if (isRep()) loadDay();
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
