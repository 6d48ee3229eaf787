// MapLibre setup shared by the apps: the basemap /config.json asks for (basemap.js: the org's style,
// the street extract over the `pmtiles` protocol, an XYZ raster, else the offline land basemap built
// into dist/basemap/), control labels in the page language, GeoJSON sources and popups. Nothing here
// fetches from another host unless the deployment configured one.
import maplibregl from 'maplibre-gl';
import { Protocol } from 'pmtiles';
import { t, language } from './i18n.js';
import { boundsOf, emptyCollection } from './geo.js';
import { LABEL_LAYERS, chooseBasemap, landStyle, mapOptions, nameField, styleFor } from './basemap.js';

/** The offline land basemap style (kept under its old name for the apps and tests). */
export const offlineStyle = landStyle;

let pmtilesRegistered = false;

/** Lets MapLibre read `pmtiles://` sources (range requests to our own server), once per page. */
function registerPmtiles() {
  if (pmtilesRegistered) return;
  maplibregl.addProtocol('pmtiles', new Protocol().tile);
  pmtilesRegistered = true;
}

/** The style to draw, as /config.json asks (see basemap.js for the order); the land basemap when it cannot be read. */
export async function baseStyle({ basemap = 'basemap/', configUrl = '/config.json' } = {}) {
  const config = await fetch(configUrl).then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  if (chooseBasemap(config).kind === 'pmtiles') registerPmtiles();
  return styleFor(config, { basemap, page: globalThis.location?.href, lang: language() });
}

/** MapLibre's own control labels in the page language. */
export function controlLocale() {
  return {
    'NavigationControl.ZoomIn': t('zoom_in'), 'NavigationControl.ZoomOut': t('zoom_out'),
    'NavigationControl.ResetBearing': t('reset_bearing'), 'AttributionControl.ToggleAttribution': t('attribution'),
    'Popup.Close': t('close'),
  };
}

/** A map in `container` with the zoom controls and the basemap's attribution (from its sources);
 * CJK labels are drawn with the browser's fonts, so only the shipped Latin glyphs are fetched. */
export function createMap({ container, style, center, zoom }) {
  const map = new maplibregl.Map(mapOptions({ container, style, center, zoom, locale: controlLocale() }));
  map.addControl(new maplibregl.NavigationControl(), 'top-right');
  followLanguage(map);
  return map;
}

/** Street and place names in the page's language after a switch (the page's `lang` changes). */
function followLanguage(map) {
  const html = globalThis.document?.documentElement;
  if (!html || typeof MutationObserver === 'undefined') return;
  new MutationObserver(() => {
    for (const id of LABEL_LAYERS) {
      if (map.getLayer(id)) map.setLayoutProperty(id, 'text-field', nameField(language()));
    }
  }).observe(html, { attributes: true, attributeFilter: ['lang'] });
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
