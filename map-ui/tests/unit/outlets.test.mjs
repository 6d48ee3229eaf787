// The outlets view's pure helpers: the list's query, what an edit sends, the import's requests and
// its preview, and the history's rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  badRows, canConfirm, changes, contentTypeOf, formatOf, historyRows, importPath, listPath, numberOf, withCrs,
} from '../../src/map/views/outlets.logic.js';

test('the list query carries the filters given, blanks left out', () => {
  assert.equal(listPath({}), '/outlets?limit=200');
  assert.equal(listPath({ q: ' 王府 ', tier: 'A', status: '', territory: 7 }, 50),
    `/outlets?q=${encodeURIComponent('王府')}&tier=A&territory=7&limit=50`);
  assert.equal(listPath({ status: 'closed' }), '/outlets?status=closed&limit=200');
});

test('crs goes in the query only when it is not WGS-84', () => {
  assert.equal(withCrs('/outlets', 'wgs84'), '/outlets');
  assert.equal(withCrs('/outlets', 'gcj02'), '/outlets?crs=gcj02');
  assert.equal(withCrs('/outlets/3?x=1', 'bd09'), '/outlets/3?x=1&crs=bd09');
});

test('numbers typed with a decimal comma are read; blanks and words are not numbers', () => {
  assert.equal(numberOf('39,95'), 39.95);
  assert.equal(numberOf(' 116.4 '), 116.4);
  assert.equal(numberOf(''), null);
  assert.equal(numberOf('north'), null);
});

const outlet = { name: 'Hall', channel_type: 'business_hall', tier: 'A', address: null, radius_m: null, lat: 39.9, lon: 116.4 };
const same = { name: 'Hall', channel_type: 'business_hall', tier: 'A', address: '', radius_m: '', lat: '39.9', lon: '116.4' };

test('an edit sends only what changed; a move sends lat and lon together', () => {
  assert.deepEqual(changes(outlet, same), {});
  assert.deepEqual(changes(outlet, { ...same, name: 'Hall 2', radius_m: '80' }), { name: 'Hall 2', radius_m: 80 });
  assert.deepEqual(changes(outlet, { ...same, lat: '39.901' }), { lat: 39.901, lon: 116.4 });
  assert.deepEqual(changes({ ...outlet, address: 'x', radius_m: 50 }, same), { address: null, radius_m: null });
  // The same numbers in another system are a different place: always sent.
  assert.deepEqual(changes(outlet, same, 'gcj02'), { lat: 39.9, lon: 116.4 });
  // Half a position is not a move.
  assert.deepEqual(changes(outlet, { ...same, lon: '' }), {});
});

test('the import format comes from the choice, else the file name, else the server sniffs', () => {
  assert.equal(formatOf('a.geojson', 'csv'), 'csv');
  assert.equal(formatOf('Outlets.CSV', ''), 'csv');
  assert.equal(formatOf('x.json', ''), 'geojson');
  assert.equal(formatOf('export.dat', ''), null);
  assert.equal(contentTypeOf('csv'), 'text/csv');
  assert.equal(contentTypeOf('geojson'), 'application/geo+json');
  assert.equal(contentTypeOf(null), 'application/octet-stream');
});

test('the preview is a dry run of the same request', () => {
  assert.equal(importPath({ mode: 'atomic', format: 'csv', dryRun: true }), '/outlets/import?mode=atomic&format=csv&dry_run=true');
  assert.equal(importPath({ mode: 'partial', crs: 'bd09' }), '/outlets/import?mode=partial&crs=bd09');
});

test('bad rows keep their line and field; the file as a whole has no line', () => {
  const report = { errors: [{ index: 3, field: 'tier', reason: 'nope' }, { field: 'code', reason: 'missing column' }] };
  assert.deepEqual(badRows(report), [{ row: 3, field: 'tier', reason: 'nope' }, { row: null, field: 'code', reason: 'missing column' }]);
  assert.deepEqual(badRows(null), []);
});

test('an import is confirmed only when it writes something and atomic mode has no bad row', () => {
  assert.equal(canConfirm({ mode: 'atomic', inserted: 2, updated: 0, rejected: 1 }), false);
  assert.equal(canConfirm({ mode: 'partial', inserted: 2, updated: 0, rejected: 1 }), true);
  assert.equal(canConfirm({ mode: 'atomic', inserted: 0, updated: 1, rejected: 0 }), true);
  assert.equal(canConfirm({ mode: 'partial', inserted: 0, updated: 0, rejected: 3 }), false);
  assert.equal(canConfirm(null), false);
});

test('the history lists places with their periods and status changes, oldest first', () => {
  const rows = historyRows({
    locations: [
      { valid_from: '2026-01-02T00:00:00Z', valid_to: null, lat: 2, lon: 2 },
      { valid_from: '2026-01-01T00:00:00Z', valid_to: '2026-01-02T00:00:00Z', lat: 1, lon: 1 },
    ],
    statuses: [{ changed_at: '2026-01-01T12:00:00Z', status: 'suspended' }],
  });
  assert.deepEqual(rows.map((r) => [r.kind, r.kind === 'status' ? r.status : r.to]), [
    ['location', '2026-01-02T00:00:00Z'], ['status', 'suspended'], ['location', null],
  ]);
});
