// The basemap styles (src/common/basemap.js): which one /config.json picks, and the street style
// over the PMTiles extract — its layers, its one source, labels by language, glyphs on our host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateStyleMin } from '@maplibre/maplibre-gl-style-spec';
import { CJK_FONTS, GLYPH_FONT, chooseBasemap, mapOptions, nameField, streetStyle, styleFor, xyzStyle } from '../../src/common/basemap.js';

const page = 'http://127.0.0.1:8080/';
const all = { basemap_style: 'https://tiles.example/style.json', basemap_pmtiles: '/basemap/streets.pmtiles', basemap_xyz: 'https://t0.tianditu.gov.cn/x?z={z}&x={x}&y={y}', basemap_attribution: '天地图' };

test('the basemap is the first one configured: style URL, PMTiles, XYZ, then the land', () => {
  assert.equal(chooseBasemap(all).kind, 'style');
  assert.equal(chooseBasemap({ ...all, basemap_style: null }).kind, 'pmtiles');
  assert.deepEqual(chooseBasemap({ basemap_xyz: all.basemap_xyz, basemap_attribution: '天地图' }), { kind: 'xyz', template: all.basemap_xyz, attribution: '天地图' });
  assert.equal(chooseBasemap({ basemap_style: null, basemap_pmtiles: null, basemap_xyz: null }).kind, 'land');
  assert.equal(chooseBasemap().kind, 'land');
  // Every style is valid by MapLibre's own style specification.
  for (const config of [{}, { basemap_pmtiles: '/basemap/streets.pmtiles' }, { basemap_xyz: all.basemap_xyz }]) {
    assert.deepEqual(validateStyleMin(styleFor(config, { page, lang: 'zh' })).map((e) => e.message), []);
  }
  assert.equal(styleFor(all, { page }), all.basemap_style);
  assert.deepEqual(styleFor({}, { page, basemap: '../basemap/' }).layers.map((l) => l.id), ['sea', 'land', 'borders']);
});

test('the street style reads one PMTiles source on our host, with glyphs beside the app', () => {
  const style = styleFor({ basemap_pmtiles: '/basemap/streets.pmtiles' }, { page: `${page}app/`, basemap: '../basemap/', lang: 'zh' });
  assert.deepEqual(Object.keys(style.sources), ['streets']);
  assert.equal(style.sources.streets.type, 'vector');
  assert.equal(style.sources.streets.url, 'pmtiles://http://127.0.0.1:8080/basemap/streets.pmtiles');
  assert.equal(style.glyphs, 'http://127.0.0.1:8080/glyphs/{fontstack}/{range}.pbf');
  assert.equal(style.sprite, undefined);
  for (const layer of style.layers.filter((l) => l.type !== 'background')) assert.equal(layer.source, 'streets', layer.id);
  // Every URL of the style is on the page's host.
  for (const url of JSON.stringify(style).match(/https?:\/\/[^/"]+/g)) assert.equal(url, 'http://127.0.0.1:8080');
});

test('the street style draws land, water, buildings, roads by class and labels (Protomaps schema)', () => {
  const style = streetStyle({ pmtiles: 'http://h/s.pmtiles', glyphs: 'http://h/glyphs/{fontstack}/{range}.pbf', lang: 'zh' });
  const bySourceLayer = (sl) => style.layers.filter((l) => l['source-layer'] === sl).map((l) => l.id);
  assert.deepEqual(bySourceLayer('earth'), ['earth']);
  assert.deepEqual(bySourceLayer('water'), ['water', 'water-line']);
  assert.deepEqual(bySourceLayer('buildings'), ['buildings']);
  assert.deepEqual(bySourceLayer('places'), ['places']);
  const roads = bySourceLayer('roads');
  for (const kind of ['path', 'minor_road', 'major_road', 'highway']) assert.ok(roads.includes(`roads-${kind}`), kind);
  // Bigger roads are drawn over smaller ones, the labels over all of them.
  assert.ok(roads.indexOf('roads-highway') > roads.indexOf('roads-minor_road'));
  assert.equal(roads.at(-1), 'roads-label');
  // Widths grow with the zoom.
  const highway = style.layers.find((l) => l.id === 'roads-highway-casing');
  assert.equal(highway.paint['line-width'][0], 'interpolate');
  assert.equal(highway.paint['line-width'][2][0], 'zoom');
  // Labels: the shipped Latin font, names in the page's language, else the local name.
  const label = style.layers.find((l) => l.id === 'roads-label');
  assert.deepEqual(label.layout['text-font'], [GLYPH_FONT]);
  assert.equal(label.layout['symbol-placement'], 'line');
  assert.deepEqual(label.layout['text-field'], ['coalesce', ['get', 'name:zh'], ['get', 'name']]);
  assert.deepEqual(nameField('en'), ['coalesce', ['get', 'name:en'], ['get', 'name']]);
});

test('an XYZ template is one raster source with its attribution', () => {
  const style = xyzStyle({ template: all.basemap_xyz, attribution: '天地图' });
  assert.deepEqual(style.sources.xyz.tiles, [all.basemap_xyz]);
  assert.equal(style.sources.xyz.attribution, '天地图');
  assert.deepEqual(style.layers.map((l) => l.type), ['raster']);
});

test('CJK labels come from the browser fonts, ending in a generic family', () => {
  const options = mapOptions({ container: 'map', style: {}, center: [116.4, 39.9], zoom: 9, locale: {} });
  assert.equal(options.localIdeographFontFamily, CJK_FONTS);
  assert.equal(options.attributionControl.compact, true);
  assert.match(CJK_FONTS, /Noto Sans CJK SC/);
  assert.match(CJK_FONTS, /sans-serif$/);
});
