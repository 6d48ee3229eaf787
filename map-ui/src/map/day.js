// A rep's day: the track with its replay (slider, play/pause, marker), the day's visits coloured by
// verdict and numbered in arrival order, and the planned route with its stops numbered in route
// order; the plan-vs-actual table beside it (plan.js).
import { clock } from '../common/format.js';
import { locale, t } from '../common/i18n.js';
import { $ } from '../common/dom.js';
import { featureCollection, emptyCollection } from '../common/geo.js';
import { fitTo } from '../common/map.js';
import { api, ctx, replay, setData, state } from './context.js';
import { hideEvidence } from './evidence.js';
import { planVsActual, renderPlan } from './plan.js';
import { VERDICT_COLOR, numberImage } from './symbols.js';

export const sources = ['route', 'track', 'day-visits', 'replay-marker'];
export const layers = [
  { id: 'route', type: 'line', source: 'route', filter: ['==', ['geometry-type'], 'LineString'],
    paint: { 'line-color': '#12355b', 'line-width': 2, 'line-dasharray': [2, 2] } },
  { id: 'track', type: 'line', source: 'track', paint: { 'line-color': '#0072B2', 'line-width': 3 } },
  { id: 'plan-stops', type: 'symbol', source: 'route', filter: ['==', ['geometry-type'], 'Point'], layout: {
    'icon-image': ['concat', 'plan-', ['to-string', ['get', 'seq']]], 'icon-allow-overlap': true, 'icon-offset': [14, -14] } },
  { id: 'day-visits', type: 'circle', source: 'day-visits', paint: {
    'circle-radius': 9, 'circle-stroke-color': '#fff', 'circle-stroke-width': 2,
    'circle-color': ['match', ['get', 'verdict'], ...Object.entries(VERDICT_COLOR).flat(), '#999'] } },
  { id: 'visit-order', type: 'symbol', source: 'day-visits', layout: {
    'icon-image': ['concat', 'visit-', ['to-string', ['get', 'order']]], 'icon-allow-overlap': true } },
  { id: 'replay-marker', type: 'circle', source: 'replay-marker', paint: {
    'circle-radius': 9, 'circle-color': '#000', 'circle-stroke-color': '#F0E442', 'circle-stroke-width': 3 } },
];

/** Numbered markers are drawn when the map first asks for one (`plan-3`, `visit-7`). */
export function addImages(map) {
  map.on('styleimagemissing', (e) => {
    const m = /^(plan|visit)-(\d+)$/.exec(e.id);
    if (m && !map.hasImage(e.id)) map.addImage(e.id, numberImage(m[1], Number(m[2])));
  });
}

let daySeq = 0;

/** Shows the day picked in the panel (the latest pick wins). */
export async function loadDay() {
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
    api.request(`/reps/${rep}/track?date=${day}`, { headers: { Accept: 'application/geo+json' } }),
    api.request(`/reps/${rep}/visits?from=${day}&to=${day}`).catch(() => ({ visits: [] })),
    api.request(`/reps/${rep}/plan?date=${day}`).catch(() => ({ visits: [] })),
    api.request(`/reps/${rep}/compliance?from=${day}&to=${day}`).catch(() => ({ days: [] })),
  ]);
  if (seq !== daySeq) return;
  // Visits numbered in arrival order: the order the rep actually went round.
  const ordered = [...detail.visits].sort((x, y) => Date.parse(x.arrival) - Date.parse(y.arrival));
  state.visits = new Map(ordered.map((v, i) => [v.id, { ...v, order: i + 1 }]));
  const visits = featureCollection([...state.visits.values()].filter((v) => Number.isFinite(v.evidence?.lat)).map((v) => ({
    type: 'Feature', id: v.id, geometry: { type: 'Point', coordinates: [v.evidence.lon, v.evidence.lat] },
    properties: { verdict: v.verdict, order: v.order, outlet_id: v.outlet_id, arrival: v.arrival } })));
  hideEvidence();
  const points = track.features.filter((f) => f.geometry?.type === 'Point').sort((a, b) => Date.parse(a.properties.fix_time) - Date.parse(b.properties.fix_time));
  replay.frames = points;
  state.frames = points.map((f) => f.geometry.coordinates);
  setData('track', featureCollection(track.features.filter((f) => f.geometry && f.geometry.type !== 'Point')));
  setData('day-visits', visits);
  const stops = [...(plan.visits ?? [])].sort((x, y) => x.seq - y.seq);
  setData('route', featureCollection([
    ...(stops.length > 1 ? [{ type: 'Feature', geometry: { type: 'LineString', coordinates: stops.map((p) => [p.lon, p.lat]) }, properties: {} }] : []),
    ...stops.map((p, i) => ({ type: 'Feature', id: p.planned_visit_id, geometry: { type: 'Point', coordinates: [p.lon, p.lat] }, properties: { seq: i + 1, outlet_id: p.outlet_id } })),
  ]));
  state.plan = planVsActual(stops, compliance.days?.find((d) => d.day === day)?.planned_visits ?? [], state.visits);
  renderPlan();
  $('player').hidden = points.length === 0;
  $('day-info').textContent = points.length ? `${points.length} ${t('pings')}, ${visits.features.length} ${t('visits')}` : t('no_track');
  $('slider').max = Math.max(0, points.length - 1);
  $('slider').value = 0;
  showFrame(0);
  fitTo(ctx.map, featureCollection([...track.features, ...stops.map((p) => ({ geometry: { coordinates: [p.lon, p.lat] } }))]), 40);
}

/** The replay at fix `i`: the marker on the map and the clock. */
export function showFrame(i) {
  const f = replay.frames[i];
  if (!f) { setData('replay-marker', emptyCollection()); $('clock').textContent = ''; return; }
  setData('replay-marker', featureCollection([{ type: 'Feature', geometry: f.geometry, properties: {} }]));
  $('clock').textContent = clock(f.properties.fix_time, locale());
  state.marker = f.geometry.coordinates;
}

export function stop() { clearInterval(replay.timer); replay.timer = null; $('play').textContent = t('play'); }

export function togglePlay() {
  if (replay.timer) { stop(); return; }
  replay.timer = setInterval(() => {
    const next = Number($('slider').value) + 1;
    if (next >= replay.frames.length) { stop(); return; }
    $('slider').value = next;
    showFrame(next);
  }, 100);
  $('play').textContent = t('pause');
}

/** The play button's label in the page language. */
export function translatePlayer() { $('play').textContent = replay.timer ? t('pause') : t('play'); }
