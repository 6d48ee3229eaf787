// The map's setup: the offline basemap fetches nothing from another host, and every layer is
// drawn once, in order, from a source that exists (src/common/map.js, src/map/layers.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { offlineStyle } from '../../src/common/map.js';
import { Z_ORDER, layerSpecs } from '../../src/map/layers.js';
import * as coverage from '../../src/map/coverage.js';
import * as day from '../../src/map/day.js';
import * as evidence from '../../src/map/evidence.js';
import * as live from '../../src/map/live.js';
import * as outlets from '../../src/map/outlets.js';
import * as territories from '../../src/map/territories.js';

test('the offline basemap reads only the built GeoJSON beside the page', () => {
  const style = offlineStyle();
  assert.deepEqual(Object.values(style.sources).map((s) => s.data), ['basemap/countries.geojson', 'basemap/borders.geojson']);
  assert.deepEqual(Object.values(offlineStyle('/basemap/').sources).map((s) => s.data), ['/basemap/countries.geojson', '/basemap/borders.geojson']);
  // No glyphs or sprite (they would be fetched), no URL with a host.
  assert.equal(style.glyphs, undefined);
  assert.equal(style.sprite, undefined);
  assert.ok(!/https?:|\/\//.test(JSON.stringify(style)));
  assert.deepEqual(style.layers.map((l) => l.id), ['sea', 'land', 'borders']);
});

test('every layer is drawn once, bottom to top, from a source that is added', () => {
  const specs = layerSpecs();
  assert.deepEqual([...specs.keys()].sort(), [...Z_ORDER].sort());
  assert.equal(new Set(Z_ORDER).size, Z_ORDER.length);
  const sources = new Set([coverage, day, evidence, live, outlets, territories].flatMap((v) => v.sources));
  for (const [id, spec] of specs) assert.ok(sources.has(spec.source), `${id} reads ${spec.source}`);
  // Area figures under the outlets, the rep's day over them, the replay marker on top.
  assert.deepEqual(Z_ORDER.slice(0, 3), ['coverage', 'territories', 'outlets']);
  assert.ok(Z_ORDER.indexOf('visit-order') > Z_ORDER.indexOf('day-visits'));
  assert.equal(Z_ORDER.at(-1), 'replay-marker');
});
