// The map's layers put together: their sources, their order (bottom to top: area figures, outlets,
// then the rep's day — plan, track, visits — and the live reps), what a click opens, and loading
// what the viewport shows.
import { $ } from '../common/dom.js';
import { bboxParam, emptyCollection } from '../common/geo.js';
import { addSources, pointerOver } from '../common/map.js';
import { ctx, isRep, setData, state } from './context.js';
import * as coverage from './coverage.js';
import * as day from './day.js';
import * as evidence from './evidence.js';
import * as live from './live.js';
import * as outlets from './outlets.js';
import * as territories from './territories.js';
import { loadSummary } from './summary.js';

const VIEWS = [territories, coverage, outlets, live, day, evidence];

/** Every layer id, bottom to top. */
export const Z_ORDER = ['coverage', 'territories', 'outlets', 'route', 'track', 'plan-stops', 'day-visits', 'visit-order', 'evidence', 'live', 'replay-marker'];

/** One click, one answer: the topmost of these layers under the pointer (a visit before its outlet). */
const CLICKS = [
  ['visit-order', (f) => evidence.showEvidence(Number(f.id))],
  ['day-visits', (f) => evidence.showEvidence(Number(f.id))],
  ['outlets', (f, lngLat) => outlets.showPopup(ctx.map, f, lngLat)],
  ['coverage', (f, lngLat) => coverage.showPopup(ctx.map, f, lngLat)],
];

/** Every layer's spec, by id. */
export function layerSpecs() {
  return new Map(VIEWS.flatMap((v) => v.layers).map((l) => [l.id, l]));
}

export function addLayers(map) {
  outlets.addImages(map);
  day.addImages(map);
  addSources(map, VIEWS.flatMap((v) => v.sources));
  const specs = layerSpecs();
  for (const id of Z_ORDER) map.addLayer(specs.get(id));
  const clickable = CLICKS.map(([l]) => l);
  map.on('click', (e) => {
    const [f] = map.queryRenderedFeatures(e.point, { layers: clickable.filter((l) => map.getLayer(l)) });
    if (!f) return;
    CLICKS.find(([l]) => l === f.layer.id)[1](f, e.lngLat);
  });
  pointerOver(map, clickable);
}

let layerSeq = 0;

/** The outlets and coverage in view (the latest call wins); a layer capped at its limit says so. */
async function loadLayers() {
  const seq = ++layerSeq;
  const put = (source) => (fc) => { if (seq === layerSeq) setData(source, fc); };
  const b = ctx.map.getBounds();
  const bbox = bboxParam([b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]);
  const jobs = [];
  if (isRep()) return;
  if ($('show-outlets').checked) jobs.push(outlets.load(bbox).then(put('outlets')));
  else setData('outlets', emptyCollection());
  if ($('show-coverage').checked) jobs.push(coverage.load(bbox).then(put('coverage')));
  else setData('coverage', emptyCollection());
  await Promise.all(jobs);
  // A layer capped at its limit says so: the map is not showing everything there.
  $('truncated').hidden = !['outlets', 'coverage'].some((k) => state.data[k]?.truncated);
}

/** Layers follow the viewport; the summary only the period, territory and resolution. */
export async function refresh({ summary = true } = {}) {
  try {
    await Promise.all([loadLayers(), summary ? loadSummary() : null]);
    state.loaded = true;
  } catch (e) { console.warn(e.message); }
}
