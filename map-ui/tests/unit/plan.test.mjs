// The plan beside what happened (src/map/plan.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { increasingRun, planVsActual } from '../../src/map/plan.js';

test('the longest increasing run is not necessarily adjacent', () => {
  assert.equal(increasingRun([]), 0);
  assert.equal(increasingRun([1, 2, 3, 4]), 4);
  assert.equal(increasingRun([4, 3, 2, 1]), 1);
  assert.equal(increasingRun([3, 1, 2, 5, 4]), 3);
  assert.equal(increasingRun([2, 5, 3, 7, 11, 8, 10, 13, 6]), 6);
  assert.equal(increasingRun([1, 1, 1]), 1, 'equal is not increasing');
});

const stop = (id, code, start = null, end = null) => ({ planned_visit_id: id, outlet_code: code, outlet_name: `Shop ${code}`, window_start: start, window_end: end });
const visit = (id, code, order) => ({ id, outlet_code: code, outlet_name: `Shop ${code}`, order });

test('each planned stop with its outcome and visit, then the unplanned visits', () => {
  const stops = [stop(10, 'A', '2024-05-01T01:00:00Z', '2024-05-01T02:00:00Z'), stop(11, 'B'), stop(12, 'C')];
  // The rep went to C first, then A, then an outlet not in the plan; B was never visited.
  const visits = new Map([[100, visit(100, 'C', 1)], [101, visit(101, 'A', 2)], [102, visit(102, 'Z', 3)]]);
  const results = [
    { planned_visit_id: 10, outcome: 'late', visit_id: 101 },
    { planned_visit_id: 12, outcome: 'done', visit_id: 100 },
    { planned_visit_id: 11, outcome: 'missed', visit_id: null },
  ];
  const p = planVsActual(stops, results, visits);
  assert.deepEqual(p.rows.map((r) => [r.planned, r.outlet, r.outcome, r.visit?.id ?? null]), [
    [1, 'A Shop A', 'late', 101],
    [2, 'B Shop B', 'missed', null],
    [3, 'C Shop C', 'done', 100],
    [null, 'Z Shop Z', 'unplanned', 102],
  ]);
  assert.deepEqual(p.rows[0].window, ['2024-05-01T01:00:00Z', '2024-05-01T02:00:00Z']);
  assert.deepEqual(p.rows[3].window, [null, null]);
  // Planned order A, C was done as C (1st), A (2nd): one stop in planned order out of three.
  assert.equal(p.inOrder, 1);
  assert.equal(p.matched, 2);
  assert.equal(p.planned, 3);
});

test('a stop with no result was missed; no plan leaves only unplanned visits', () => {
  const p = planVsActual([stop(1, 'A')], [], new Map());
  assert.deepEqual(p.rows.map((r) => r.outcome), ['missed']);
  assert.equal(p.inOrder, 0);
  const q = planVsActual([], [], new Map([[5, visit(5, 'Q', 1)]]));
  assert.deepEqual(q.rows.map((r) => [r.planned, r.outcome]), [[null, 'unplanned']]);
  assert.equal(q.planned, 0);
});
