// The basemap styles the apps draw on, and which one /config.json asks for. Pure: no MapLibre, no
// DOM, so the unit tests build every style (tests/unit/basemap.test.mjs). The order, first set wins:
//   1. `basemap_style` — a style URL of the org's own tile server (FV_BASEMAP_STYLE_URL);
//   2. `basemap_pmtiles` — the deployment's street extract (FV_BASEMAP_PMTILES), served by our own
//      server with range requests and drawn with the street style below (Protomaps basemap schema);
//   3. `basemap_xyz` — a raster tile template such as Tianditu's (FV_BASEMAP_XYZ), with
//      `basemap_attribution`;
//   4. the land basemap: Natural Earth land and borders built into dist/basemap/ (the demo's).
// Labels: Latin glyphs shipped with the app (dist/glyphs/, DejaVu Sans); CJK is drawn with the
// browser's own fonts (the map's `localIdeographFontFamily`), so no CJK glyph range is fetched.

/** The font stack of the shipped glyphs (dist/glyphs/<stack>/<range>.pbf). */
export const GLYPH_FONT = 'dejavu-sans';

/** The browser fonts MapLibre draws CJK with (`localIdeographFontFamily`). */
export const CJK_FONTS = "'Noto Sans CJK SC', 'Source Han Sans SC', 'PingFang SC', 'Microsoft YaHei', sans-serif";

/** Attribution of the Protomaps basemap build (OpenStreetMap data). */
export const STREET_ATTRIBUTION = '© OpenStreetMap contributors, Protomaps';

/** Which basemap `config` (/config.json) asks for: `{kind, ...}` with kind style, pmtiles, xyz or land. */
export function chooseBasemap(config = {}) {
  if (config.basemap_style) return { kind: 'style', url: config.basemap_style };
  if (config.basemap_pmtiles) return { kind: 'pmtiles', url: config.basemap_pmtiles };
  if (config.basemap_xyz) return { kind: 'xyz', template: config.basemap_xyz, attribution: config.basemap_attribution ?? '' };
  return { kind: 'land' };
}

/** The land basemap; `basemap` is where the built GeoJSON files are, from the page. */
export function landStyle(basemap = 'basemap/') {
  return {
    version: 8,
    sources: {
      countries: { type: 'geojson', data: `${basemap}countries.geojson`, attribution: 'Natural Earth' },
      borders: { type: 'geojson', data: `${basemap}borders.geojson` },
    },
    layers: [
      { id: 'sea', type: 'background', paint: { 'background-color': '#cfe3f3' } },
      { id: 'land', type: 'fill', source: 'countries', paint: { 'fill-color': '#f3f1ea' } },
      { id: 'borders', type: 'line', source: 'borders', paint: { 'line-color': '#b9b4a6', 'line-width': 0.8 } },
    ],
  };
}

/** A raster basemap from an XYZ tile template (`{z}`, `{x}`, `{y}`). */
export function xyzStyle({ template, attribution = '' }) {
  return {
    version: 8,
    sources: { xyz: { type: 'raster', tiles: [template], tileSize: 256, maxzoom: 18, attribution } },
    layers: [{ id: 'xyz', type: 'raster', source: 'xyz' }],
  };
}

/** The label of a feature in `lang`: its name in that language, else its own (local) name. */
export function nameField(lang) {
  return ['coalesce', ['get', lang === 'zh' ? 'name:zh' : 'name:en'], ['get', 'name']];
}

/** The street style's label layers, whose `text-field` follows the page's language. */
export const LABEL_LAYERS = ['roads-label', 'places'];

/** A width that grows with the zoom: `stops` are [zoom, px] pairs, each width times `scale`. */
const byZoom = (stops, scale = 1) => ['interpolate', ['exponential', 1.6], ['zoom'], ...stops.flatMap(([z, px]) => [z, px * scale])];
const kindIs = (...kinds) => ['in', ['get', 'kind'], ['literal', kinds]];

/** The road classes drawn, bottom to top: Protomaps `roads.kind`, colour, casing and [zoom, width] stops. */
export const ROAD_CLASSES = [
  { kind: 'path', color: '#ffffff', casing: null, width: [[14, 0.5], [18, 2]], minzoom: 14 },
  { kind: 'minor_road', color: '#ffffff', casing: '#d6d1c4', width: [[12, 0.5], [15, 2.5], [18, 10]], minzoom: 11 },
  { kind: 'major_road', color: '#fff7d6', casing: '#d9c98f', width: [[8, 0.4], [12, 1.8], [15, 6], [18, 18]], minzoom: 7 },
  { kind: 'highway', color: '#ffd98a', casing: '#c9a45a', width: [[6, 0.6], [12, 3], [15, 8], [18, 24]], minzoom: 5 },
];

/**
 * The street style over a Protomaps-schema PMTiles extract: `pmtiles` the file's absolute URL,
 * `glyphs` the absolute glyph URL template (`…/{fontstack}/{range}.pbf`), `lang` the labels' language.
 * Layers read `earth`, `landuse`, `water`, `buildings`, `roads` and `places`; a layer the extract
 * lacks simply draws nothing.
 */
export function streetStyle({ pmtiles, glyphs, lang = 'en' }) {
  const src = { source: 'streets' };
  const roads = ROAD_CLASSES.flatMap((c) => [
    ...(c.casing ? [{
      id: `roads-${c.kind}-casing`, type: 'line', ...src, 'source-layer': 'roads', minzoom: c.minzoom,
      filter: kindIs(c.kind), layout: { 'line-cap': 'round', 'line-join': 'round' },
      paint: { 'line-color': c.casing, 'line-width': byZoom(c.width), 'line-opacity': 0.9 },
    }] : []),
    {
      id: `roads-${c.kind}`, type: 'line', ...src, 'source-layer': 'roads', minzoom: c.minzoom,
      filter: kindIs(c.kind), layout: { 'line-cap': 'round', 'line-join': 'round' },
      paint: { 'line-color': c.color, 'line-width': byZoom(c.width, c.casing ? 0.75 : 1) },
    },
  ]);
  return {
    version: 8,
    glyphs,
    sources: { streets: { type: 'vector', url: `pmtiles://${pmtiles}`, attribution: STREET_ATTRIBUTION } },
    layers: [
      { id: 'background', type: 'background', paint: { 'background-color': '#f3f1ea' } },
      { id: 'earth', type: 'fill', ...src, 'source-layer': 'earth', paint: { 'fill-color': '#f3f1ea' } },
      {
        id: 'landuse-park', type: 'fill', ...src, 'source-layer': 'landuse',
        filter: kindIs('park', 'forest', 'wood', 'grass', 'garden', 'cemetery', 'golf_course', 'nature_reserve'),
        paint: { 'fill-color': '#dcebcf' },
      },
      { id: 'water', type: 'fill', ...src, 'source-layer': 'water', filter: ['==', ['geometry-type'], 'Polygon'], paint: { 'fill-color': '#cfe3f3' } },
      { id: 'water-line', type: 'line', ...src, 'source-layer': 'water', filter: ['==', ['geometry-type'], 'LineString'], paint: { 'line-color': '#cfe3f3', 'line-width': byZoom([[10, 0.5], [16, 3]]) } },
      { id: 'buildings', type: 'fill', ...src, 'source-layer': 'buildings', minzoom: 14, paint: { 'fill-color': '#e2ddd2', 'fill-outline-color': '#d3ccbd' } },
      ...roads,
      {
        id: 'roads-label', type: 'symbol', ...src, 'source-layer': 'roads', minzoom: 12,
        filter: kindIs('highway', 'major_road', 'minor_road'),
        layout: {
          'symbol-placement': 'line', 'text-field': nameField(lang), 'text-font': [GLYPH_FONT],
          'text-size': ['interpolate', ['linear'], ['zoom'], 12, 10, 16, 13], 'text-max-angle': 30, 'symbol-spacing': 300,
        },
        paint: { 'text-color': '#4a4638', 'text-halo-color': '#ffffff', 'text-halo-width': 1.5 },
      },
      {
        id: 'places', type: 'symbol', ...src, 'source-layer': 'places',
        filter: kindIs('country', 'region', 'locality', 'neighbourhood', 'macrohood'),
        layout: {
          'text-field': nameField(lang), 'text-font': [GLYPH_FONT],
          'text-size': ['match', ['get', 'kind'], 'country', 16, 'region', 14, 'locality', 14, 11],
          'text-max-width': 8,
        },
        paint: { 'text-color': '#2e2b24', 'text-halo-color': '#ffffff', 'text-halo-width': 1.5 },
      },
    ],
  };
}

/**
 * The style to give MapLibre for `config`: a URL (the org's style) or a style object. `basemap` is
 * where the land basemap's files are (from the page), `page` the page's URL (relative paths are
 * made absolute: MapLibre's protocol and glyph requests need them), `lang` the labels' language.
 */
export function styleFor(config, { basemap = 'basemap/', page, lang = 'en' } = {}) {
  const choice = chooseBasemap(config);
  switch (choice.kind) {
    case 'style': return choice.url;
    case 'pmtiles': return streetStyle({
      pmtiles: new URL(choice.url, page).href,
      glyphs: `${new URL(`${basemap}../glyphs/`, page).href}{fontstack}/{range}.pbf`,
      lang,
    });
    case 'xyz': return xyzStyle(choice);
    default: return landStyle(basemap);
  }
}

/**
 * The options of a MapLibre map over `style`: attribution from the style's sources (compact), and
 * CJK drawn with the browser's fonts (`localIdeographFontFamily`), so that only the shipped Latin
 * glyph ranges are ever fetched.
 */
export function mapOptions({ container, style, center, zoom, locale }) {
  return { container, locale, style, center, zoom, attributionControl: { compact: true }, localIdeographFontFamily: CJK_FONTS };
}
