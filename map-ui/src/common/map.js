// MapLibre setup shared by the apps: the offline basemap (Natural Earth land and borders from the
// world-atlas package, built into dist/basemap/) unless /config.json names a style of the org's
// own tile server, control labels in the page language, GeoJSON sources and popups. Nothing here
// fetches from another host.
import maplibregl from 'maplibre-gl';
import { t } from './i18n.js';
import { boundsOf, emptyCollection } from './geo.js';

/** The offline basemap style; `basemap` is where the built GeoJSON files are, from the page. */
export function offlineStyle(basemap = 'basemap/') {
  return {
    version: 8,
    sources: {
      countries: { type: 'geojson', data: `${basemap}countries.geojson` },
      borders: { type: 'geojson', data: `${basemap}borders.geojson` },
    },
    layers: [
      { id: 'sea', type: 'background', paint: { 'background-color': '#cfe3f3' } },
      { id: 'land', type: 'fill', source: 'countries', paint: { 'fill-color': '#f3f1ea' } },
      { id: 'borders', type: 'line', source: 'borders', paint: { 'line-color': '#b9b4a6', 'line-width': 0.8 } },
    ],
  };
}

/** The style to draw: `basemap_style` from /config.json when the server names one, else the offline one. */
export async function baseStyle({ basemap, configUrl = '/config.json' } = {}) {
  const config = await fetch(configUrl).then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  return config.basemap_style || offlineStyle(basemap);
}

/** MapLibre's own control labels in the page language. */
export function controlLocale() {
  return {
    'NavigationControl.ZoomIn': t('zoom_in'), 'NavigationControl.ZoomOut': t('zoom_out'),
    'NavigationControl.ResetBearing': t('reset_bearing'), 'AttributionControl.ToggleAttribution': t('attribution'),
    'Popup.Close': t('close'),
  };
}

/** A map in `container` with the zoom controls and the basemap's attribution. */
export function createMap({ container, style, center, zoom }) {
  const map = new maplibregl.Map({ container, locale: controlLocale(), style, center, zoom, attributionControl: { compact: true, customAttribution: 'Natural Earth' } });
  map.addControl(new maplibregl.NavigationControl(), 'top-right');
  return map;
}

/** An empty GeoJSON source per id. */
export function addSources(map, ids) {
  for (const id of ids) map.addSource(id, { type: 'geojson', data: emptyCollection() });
}

/** Moves the map (at once) to show the whole collection, if it has any coordinates. */
export function fitTo(map, fc, padding) {
  const b = boundsOf(fc);
  if (b) map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding, duration: 0 });
}

/** A popup with `html` at `lngLat`. */
export function popup(map, lngLat, html) {
  return new maplibregl.Popup({ className: 'popup', maxWidth: '280px' }).setLngLat(lngLat).setHTML(html).addTo(map);
}

/** The pointer cursor over the features of `layers`. */
export function pointerOver(map, layers) {
  for (const l of layers) {
    map.on('mouseenter', l, () => { map.getCanvas().style.cursor = 'pointer'; });
    map.on('mouseleave', l, () => { map.getCanvas().style.cursor = ''; });
  }
}
