// GeoJSON helpers (src/common/geo.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bboxParam, boundsOf, emptyCollection, featureCollection, pointFeature } from '../../src/common/geo.js';

test('bounds take in every coordinate of every geometry', () => {
  const fc = featureCollection([
    pointFeature(116.4, 39.9),
    { type: 'Feature', geometry: { type: 'LineString', coordinates: [[116.2, 40.1], [116.6, 39.7]] }, properties: {} },
    { type: 'Feature', geometry: { type: 'Polygon', coordinates: [[[115, 39], [115.5, 39], [115.5, 41], [115, 39]]] }, properties: {} },
    { type: 'Feature', geometry: null, properties: {} },
  ]);
  assert.deepEqual(boundsOf(fc), [115, 39, 116.6, 41]);
  assert.deepEqual(boundsOf(featureCollection([pointFeature(1, 2)])), [1, 2, 1, 2]);
  assert.equal(boundsOf(emptyCollection()), null);
});

test('a point feature keeps its id only when it has one', () => {
  assert.deepEqual(pointFeature(1, 2, { a: 1 }, 7), { type: 'Feature', id: 7, geometry: { type: 'Point', coordinates: [1, 2] }, properties: { a: 1 } });
  assert.equal('id' in pointFeature(1, 2), false);
});

test('the bbox parameter is clamped to the world with 5 decimals', () => {
  assert.equal(bboxParam([116.123456789, 39.9, 116.5, 40]), '116.12346,39.90000,116.50000,40.00000');
  assert.equal(bboxParam([-200, -95, 190, 91]), '-180.00000,-90.00000,180.00000,90.00000');
});
