// Today's map, loaded after the day's list (main.js imports this module with `import()`, so
// MapLibre arrives in its own chunk once the list is shown): the planned stops coloured by state
// and joined in route order, the rep's own position, and the outlets nearby. The basemap is the
// offline one (Natural Earth, ../basemap/) unless /config.json names the org's own tile server:
// nothing is fetched from another host. Circles only (no glyphs, no sprites).
import { createMap, baseStyle, addSources, fitTo } from '../common/map.js';
import { featureCollection, pointFeature } from '../common/geo.js';

export const STATE_COLOR = { done: '#2e7d32', pending: '#12355b', late: '#ef6c00', missed: '#b71c1c' };

let map = null; // set once loaded, with its sources and layers
let ready = null;
let fitted = false;

/** Draws the map in `container` (once), then `update`s it. */
export async function showMap(container, data) {
  if (!ready) {
    ready = (async () => {
      const style = await baseStyle({ basemap: '../basemap/' });
      const at = data.me ?? data.stops?.[0] ?? { lon: 116.4, lat: 39.9 };
      const m = createMap({ container, style, center: [at.lon, at.lat], zoom: 13 });
      await new Promise((resolve) => m.on('load', resolve));
      addSources(m, ['route', 'nearby', 'stops', 'me']);
      m.addLayer({ id: 'route', type: 'line', source: 'route', paint: { 'line-color': '#12355b', 'line-width': 2, 'line-dasharray': [2, 2] } });
      m.addLayer({ id: 'nearby', type: 'circle', source: 'nearby', paint: { 'circle-radius': 5, 'circle-color': '#9e9e9e', 'circle-stroke-color': '#fff', 'circle-stroke-width': 1 } });
      m.addLayer({ id: 'stops', type: 'circle', source: 'stops', paint: {
        'circle-radius': ['case', ['get', 'next'], 11, 8],
        'circle-color': ['match', ['get', 'state'], ...Object.entries(STATE_COLOR).flat(), '#12355b'],
        'circle-stroke-color': '#fff', 'circle-stroke-width': 2 } });
      m.addLayer({ id: 'me', type: 'circle', source: 'me', paint: { 'circle-radius': 7, 'circle-color': '#1e88e5', 'circle-stroke-color': '#fff', 'circle-stroke-width': 3 } });
      map = m;
    })();
  }
  await ready;
  return update(data);
}

/**
 * Puts `data` on the map: `stops` (planned, in route order, each `{ outlet_id, lat, lon, state, seq }`),
 * `next` (the next stop's outlet id), `me` (the rep's fix) and `nearby` outlets. Answers what it drew.
 */
export function update({ stops = [], next = null, me = null, nearby = [] }) {
  if (!map) return null;
  const stopFc = featureCollection(stops.map((s) => pointFeature(s.lon, s.lat, { outlet_id: s.outlet_id, seq: s.seq, state: s.state, next: s.outlet_id === next })));
  const route = featureCollection(stops.length > 1 ? [{ type: 'Feature', properties: {}, geometry: { type: 'LineString', coordinates: stops.map((s) => [s.lon, s.lat]) } }] : []);
  const meFc = featureCollection(me ? [pointFeature(me.lon, me.lat, { accuracy_m: me.accuracy_m })] : []);
  const planned = new Set(stops.map((s) => s.outlet_id));
  const nearFc = featureCollection(nearby.filter((o) => !planned.has(o.id)).map((o) => pointFeature(o.lon, o.lat, { outlet_id: o.id })));
  map.getSource('stops').setData(stopFc);
  map.getSource('route').setData(route);
  map.getSource('me').setData(meFc);
  map.getSource('nearby').setData(nearFc);
  if (!fitted && (stops.length || me)) {
    fitTo(map, featureCollection([...stopFc.features, ...meFc.features]), 40);
    if (map.getZoom() > 16) map.setZoom(16);
    fitted = true;
  }
  return { loaded: true, stops: stops.length, me: me != null, nearby: nearFc.features.length, next };
}
