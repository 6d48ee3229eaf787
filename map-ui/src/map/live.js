// The live layer: the reps in scope where their phones last put them, moved by the `/live` stream.
import { $ } from '../common/dom.js';
import { featureCollection, pointFeature } from '../common/geo.js';
import { api, ctx, setData } from './context.js';

export const sources = ['live'];
export const layers = [
  { id: 'live', type: 'circle', source: 'live', paint: {
    'circle-radius': 8, 'circle-color': '#0072B2', 'circle-stroke-color': '#fff', 'circle-stroke-width': 3 } },
];

let started = false;

/** Follows the stream, reconnecting after a failure (waiting up to 30 s); once per page. */
export async function follow() {
  if (started) return;
  started = true;
  for (let wait = 1000; ; wait = Math.min(wait * 2, 30000)) {
    try {
      await read();
      wait = 1000;
    } catch (e) { console.warn(`live: ${e.message}`); }
    await new Promise((r) => setTimeout(r, wait));
  }
}

/** The layer shown or hidden with its checkbox; shown, it follows the stream. */
export function toggle() {
  ctx.map.setLayoutProperty('live', 'visibility', $('show-live').checked ? 'visible' : 'none');
  if ($('show-live').checked) follow();
}

const point = (p) => pointFeature(p.lon, p.lat, { rep_id: p.rep_id, fix_time: p.fix_time }, p.device_id);

/** The last positions, then each `position` event, until the stream ends. */
async function read() {
  const reps = new Map();
  const draw = () => setData('live', featureCollection([...reps.values()]));
  for (const p of await api.request('/live/positions').catch(() => [])) reps.set(p.device_id, point(p));
  draw();
  await api.stream('/live', ({ event, data }) => {
    if (event === 'position' && data) { const p = JSON.parse(data); reps.set(p.device_id, point(p)); draw(); }
  });
}
