// The plan editor's ordering and picking helpers (src/map/views/planedit.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../src/common/api.js';
import { showErrors } from '../../src/map/views/form.js';
import {
  applyDayOrder, dayGroups, dayOrderBody, dayOrderErrors, lassoPick, lassoPolygon, reorderDay,
} from '../../src/map/views/planedit.js';

// A 3×3 grid of outlets 0.01° apart from (116.30, 40.00); ids 1..9 row by row.
const GRID = Array.from({ length: 9 }, (_, i) => ({ id: i + 1, lon: 116.30 + (i % 3) * 0.01, lat: 40.00 + Math.floor(i / 3) * 0.01 }));
// A square round the bottom-left four (ids 1, 2, 4, 5), open (as drawn) and clockwise.
const SQUARE = [[116.295, 39.995], [116.295, 40.015], [116.315, 40.015], [116.315, 39.995]];
const MONDAY = { weekday: 1, week_of_cycle: '', visit_date: '' };
const item = (outlet_id, weekday = 1, extra = {}) => ({ outlet_id, weekday, week_of_cycle: '', visit_date: '', ...extra });
const order = (items) => items.map((i) => [i.outlet_id, i.weekday, i.seq]);

test('a lasso is closed into a polygon; fewer than 3 distinct points enclose nothing', () => {
  assert.deepEqual(lassoPolygon(SQUARE).coordinates[0], [...SQUARE, SQUARE[0]]);
  assert.deepEqual(lassoPolygon([...SQUARE, SQUARE[0]]).coordinates[0], [...SQUARE, SQUARE[0]], 'already closed: not closed twice');
  assert.equal(lassoPolygon([[1, 1], [2, 2], [1, 1]]), null);
  assert.equal(lassoPolygon([]), null);
  assert.equal(lassoPolygon(undefined), null);
});

test('a lasso takes exactly the outlets inside it, in the outlets\' order', () => {
  assert.deepEqual(lassoPick(GRID, SQUARE, [], MONDAY), [1, 2, 4, 5]);
  assert.deepEqual(lassoPick(GRID, [...SQUARE].reverse(), [], MONDAY), [1, 2, 4, 5], 'either way round');
  // A freehand L round 1, 2, 3 and 6 (not 5): concave.
  const ell = [[116.295, 39.995], [116.325, 39.995], [116.325, 40.015], [116.315, 40.015], [116.315, 40.005], [116.295, 40.005]];
  assert.deepEqual(lassoPick(GRID, ell, [], MONDAY), [1, 2, 3, 6]);
  assert.deepEqual(lassoPick(GRID, [[116.5, 40.5], [116.6, 40.5], [116.6, 40.6]], [], MONDAY), [], 'nothing inside');
  assert.deepEqual(lassoPick(GRID, [[116.295, 39.995], [116.315, 40.015]], [], MONDAY), [], 'a line encloses nothing');
});

test('a lasso leaves out what the day already plans, but takes outlets planned on other days', () => {
  const items = [item(1), item(2, 2), item(4, 1, { week_of_cycle: 2 }), item(5, 1, { visit_date: '2026-12-14' })];
  assert.deepEqual(lassoPick(GRID, SQUARE, items, MONDAY), [2, 4, 5], '1 is planned every Monday');
  assert.deepEqual(lassoPick(GRID, SQUARE, items, { weekday: 2, week_of_cycle: '', visit_date: '' }), [1, 4, 5]);
  assert.deepEqual(lassoPick(GRID, SQUARE, items, { weekday: 1, week_of_cycle: 2, visit_date: '' }), [1, 2, 5]);
  assert.deepEqual(lassoPick(GRID, SQUARE, items, { weekday: 1, week_of_cycle: '', visit_date: '2026-12-14' }), [1, 2, 4]);
});

test('a lasso skips outlets without a position and takes an outlet listed twice once', () => {
  const outlets = [{ id: 1, lon: null, lat: null }, GRID[1], GRID[1], GRID[3]];
  assert.deepEqual(lassoPick(outlets, SQUARE, [], MONDAY), [2, 4]);
});

test('a dragged day takes its new order in its own places; other days stay', () => {
  const items = [item(10), item(11), item(20, 2), item(12)];
  // Monday's stops are rows 0, 1, 3; the last is dragged to the top.
  assert.deepEqual(order(reorderDay(items, [3, 0, 1])), [[12, 1, 1], [10, 1, 2], [20, 2, 1], [11, 1, 3]]);
  assert.deepEqual(order(reorderDay(items, [2])), [[10, 1, 1], [11, 1, 2], [20, 2, 1], [12, 1, 3]], 'a one-stop day');
});

test('a drag that is not exactly one day\'s stops changes nothing', () => {
  const items = [item(10), item(11), item(20, 2)];
  const same = [[10, 1, 1], [11, 1, 2], [20, 2, 1]];
  assert.deepEqual(order(reorderDay(items, [2, 0, 1])), same, 'across days');
  assert.deepEqual(order(reorderDay(items, [1])), same, 'part of a day');
  assert.deepEqual(order(reorderDay(items, [])), same, 'nothing');
});

test('days group their rows in list order', () => {
  const items = [item(10), item(20, 2), item(11), item(30, 1, { week_of_cycle: 3 })];
  assert.deepEqual(dayGroups(items), [{ key: 'w0-d1', rows: [0, 2] }, { key: 'w0-d2', rows: [1] }, { key: 'w3-d1', rows: [3] }]);
  assert.deepEqual(dayGroups([]), []);
});

test('the solver is sent the day\'s stops with their windows and seconds, the hours and its time', () => {
  const day = [item(7, 1, { window_start: '10:00:00', window_end: '12:00', expected_duration_s: 1200 }), item('8', 1, { expected_duration_s: '' })];
  assert.deepEqual(dayOrderBody(5, day, { start: '09:00', end: '18:00' }, 2, (it) => (it.outlet_id === '8' ? 900 : null)), {
    rep_id: 5,
    stops: [{ outlet_id: 7, window_start: '10:00', window_end: '12:00', expected_duration_s: 1200 }, { outlet_id: 8, expected_duration_s: 900 }],
    day_start: '09:00', day_end: '18:00', max_seconds: 2,
  });
  assert.deepEqual(dayOrderBody(5, [item(8)], { start: '', end: '' }, null), { rep_id: 5, stops: [{ outlet_id: 8 }] }, 'nothing empty is sent');
});

test('the solver\'s order is applied to its day only, what does not fit kept at the day\'s end with why', () => {
  const items = [item(10), item(20, 2), item(11), item(12), item(13)];
  const answer = {
    stops: [{ outlet_id: 12, seq: 2, arrival: '09:40', leg_m: 900 }, { outlet_id: 13, seq: 1, arrival: '09:10', leg_m: 300 }, { outlet_id: 10, seq: 3, arrival: '10:30', leg_m: 400 }],
    unplaced: [{ outlet_id: 11, reason: 'window closed' }], travel_m: 1600, given_travel_m: 2500,
  };
  const out = applyDayOrder(items, 'w0-d1', answer);
  assert.deepEqual(order(out), [[13, 1, 1], [20, 2, 1], [12, 1, 2], [10, 1, 3], [11, 1, 4]]);
  assert.deepEqual(out.map((i) => [i.arrival ?? null, i.unplaced ?? null]), [['09:10', ''], [null, null], ['09:40', ''], ['10:30', ''], ['', 'window closed']]);
  // A stop the answer does not name stays in the day, after the rest, without an old arrival.
  const partial = applyDayOrder(out, 'w0-d1', { stops: [{ outlet_id: 11, seq: 1, arrival: '09:05' }], unplaced: [] });
  assert.deepEqual(order(partial).filter(([, wd]) => wd === 1).map(([id]) => id), [11, 13, 12, 10]);
  assert.deepEqual(partial.filter((i) => i.weekday === 1).map((i) => i.arrival), ['09:05', '', '', '']);
});

test('an outlet twice in a day takes two of the solver\'s stops', () => {
  const out = applyDayOrder([item(10), item(10), item(11)], 'w0-d1', { stops: [{ outlet_id: 11, seq: 1 }, { outlet_id: 10, seq: 2 }, { outlet_id: 10, seq: 3 }] });
  assert.deepEqual(order(out), [[11, 1, 1], [10, 1, 2], [10, 1, 3]]);
});

test('the solver\'s field errors are named as the editor\'s rows', () => {
  const err = new ApiError({ status: 422, detail: 'bad stops', errors: [
    { field: 'stops[1].window_end', reason: 'before the start' }, { field: 'stops[0]', reason: 'twice' },
    { field: 'day_end', reason: 'before day_start' }, { field: 'stops[9].outlet_id', reason: 'unknown' },
  ] });
  const mapped = dayOrderErrors(err, [2, 5]);
  assert.ok(mapped instanceof ApiError);
  assert.equal(mapped.status, 422);
  assert.equal(mapped.detail, 'bad stops');
  assert.deepEqual(mapped.errors.map((e) => e.field), ['items[5].window_end', 'items[2].outlet_id', 'day_end', 'stops[9].outlet_id']);
  assert.equal(err.errors[0].field, 'stops[1].window_end', 'the error itself is left as it was');
  // What the form then shows beside the row (form.js), with a stand-in form.
  const els = Object.fromEntries(['items[5].window_end', 'items[2].outlet_id', 'day_end', ''].map((f) => [f, { textContent: '' }]));
  const form = { querySelectorAll: () => Object.values(els), querySelector: (sel) => els[/"(.*)"/.exec(sel)?.[1] ?? ''] ?? null };
  globalThis.CSS ??= { escape: (s) => s };
  showErrors(form, mapped);
  assert.equal(els['items[5].window_end'].textContent, 'items[5].window_end: before the start');
  assert.equal(els['items[2].outlet_id'].textContent, 'items[2].outlet_id: twice');
});
