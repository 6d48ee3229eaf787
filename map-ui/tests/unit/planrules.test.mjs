// The beat plans view's pure helpers (src/map/views/planrules.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  dayBefore, dayLoads, frequencyCheck, itemBody, itemField, minutesOf, moveStop, orderByNearest,
  overlapping, percentShorter, renumber, requiredInCycle, visitsPerCycle,
} from '../../src/map/views/planrules.js';

const POLICIES = [
  { tier: 'A', required_visits: 4, cycle_days: 28 }, { tier: 'B', required_visits: 2, cycle_days: 28 },
  { tier: 'C', required_visits: 1, cycle_days: 28 }, { tier: 'VIP', required_visits: 8, cycle_days: 28 },
];

test('a tier asks for its visits per 28 days scaled to the cycle, rounded up', () => {
  assert.equal(requiredInCycle(POLICIES[0], 4), 4);
  assert.equal(requiredInCycle(POLICIES[0], 1), 1);
  assert.equal(requiredInCycle(POLICIES[1], 1), 1, 'B: 0.5 a week is 1');
  assert.equal(requiredInCycle(POLICIES[2], 4), 1);
  assert.equal(requiredInCycle(POLICIES[2], 8), 2);
  assert.equal(requiredInCycle(POLICIES[3], 2), 4);
  assert.equal(requiredInCycle({ tier: 'X', required_visits: 3, cycle_days: 7 }, 2), 6);
  assert.equal(requiredInCycle(undefined, 4), 0, 'an unknown tier requires nothing');
});

test('an item plans once per cycle with a week, every week without, once when dated', () => {
  assert.equal(visitsPerCycle({ weekday: 1, week_of_cycle: 2 }, 4), 1);
  assert.equal(visitsPerCycle({ weekday: 1 }, 4), 4);
  assert.equal(visitsPerCycle({ visit_date: '2026-12-14' }, 4), 1);
});

test('the frequency check names each outlet under its tier, least covered first', () => {
  const outlets = [{ id: 1, tier: 'A' }, { id: 2, tier: 'C' }, { id: 3, tier: 'B' }];
  const items = [
    { outlet_id: 1, weekday: 1 }, // every week: 4
    { outlet_id: 3, weekday: 2, week_of_cycle: 1 },
    { outlet_id: 9, weekday: 3, week_of_cycle: 1 }, // not of the territory's list
  ];
  const check = frequencyCheck(items, outlets, POLICIES, 4);
  assert.deepEqual(check.map((c) => [c.outlet_id, c.planned, c.required, c.ok]), [
    [2, 0, 1, false], [3, 1, 2, false], [1, 4, 4, true], [9, 1, 0, true],
  ]);
});

test('each day of the cycle sums its stops against the working hours', () => {
  const items = [
    { outlet_id: 1, weekday: 1, expected_duration_s: 3600 }, // every week
    { outlet_id: 2, weekday: 1, week_of_cycle: 2, expected_duration_s: 7200 },
    { outlet_id: 3, weekday: 1, week_of_cycle: 2 }, // no duration: durationOf
    { outlet_id: 4, visit_date: '2026-12-15', expected_duration_s: 600 },
  ];
  const days = dayLoads(items, 2, { start: '09:00', end: '12:00' }, () => 1800);
  const byKey = Object.fromEntries(days.map((d) => [d.key, d]));
  assert.deepEqual(Object.keys(byKey).sort(), ['date-2026-12-15', 'w1-d1', 'w2-d1']);
  assert.equal(byKey['w1-d1'].seconds, 3600);
  assert.equal(byKey['w1-d1'].ok, true);
  assert.equal(byKey['w2-d1'].seconds, 3600 + 7200 + 1800);
  assert.equal(byKey['w2-d1'].stops, 3);
  assert.equal(byKey['w2-d1'].available, 3 * 3600);
  assert.equal(byKey['w2-d1'].ok, false, '3.5 h of stops do not fit 3 h');
  assert.equal(byKey['date-2026-12-15'].ok, true);
});

test("a day's stops move up and down among that day's stops only, and are renumbered", () => {
  const items = renumber([
    { outlet_id: 1, weekday: 1 }, { outlet_id: 2, weekday: 2 }, { outlet_id: 3, weekday: 1 }, { outlet_id: 4, weekday: 1 },
  ]);
  assert.deepEqual(items.map((i) => i.seq), [1, 1, 2, 3]);
  const down = moveStop(items, 0, 1);
  assert.deepEqual(down.map((i) => [i.outlet_id, i.seq]), [[3, 1], [2, 1], [1, 2], [4, 3]]);
  const up = moveStop(items, 3, -1);
  assert.deepEqual(up.map((i) => [i.outlet_id, i.seq]), [[1, 1], [2, 1], [4, 2], [3, 3]]);
  assert.deepEqual(moveStop(items, 0, -1).map((i) => i.outlet_id), [1, 2, 3, 4], 'the first stop stays first');
});

test('nearest-neighbour order from the first stop of each day', () => {
  const positions = new Map([[1, { lat: 0, lon: 0 }], [2, { lat: 0, lon: 0.3 }], [3, { lat: 0, lon: 0.1 }], [4, { lat: 0, lon: 0.2 }]]);
  const items = [{ outlet_id: 1, weekday: 1 }, { outlet_id: 2, weekday: 1 }, { outlet_id: 9, weekday: 1 },
    { outlet_id: 3, weekday: 1 }, { outlet_id: 4, weekday: 1 }, { outlet_id: 2, weekday: 2 }];
  const out = orderByNearest(items, positions);
  assert.deepEqual(out.map((i) => [i.outlet_id, i.weekday, i.seq]), [[1, 1, 1], [3, 1, 2], [4, 1, 3], [2, 1, 4], [9, 1, 5], [2, 2, 1]]);
});

test('server item errors name their row and field', () => {
  assert.deepEqual(itemField('items[3].weekday'), { index: 3, key: 'weekday' });
  assert.deepEqual(itemField('items[0]'), { index: 0, key: '' });
  assert.deepEqual(itemField('valid_to'), { index: null, key: 'valid_to' });
});

test('times, percentages, days and overlaps', () => {
  assert.equal(minutesOf('09:30'), 570);
  assert.equal(minutesOf('18:00:00'), 1080);
  assert.equal(minutesOf('9h'), null);
  assert.equal(percentShorter(75, 100), 25);
  assert.equal(percentShorter(5, 0), null);
  assert.equal(dayBefore('2026-03-01'), '2026-02-28');
  const plans = [
    { id: 1, active: true, valid_from: '2026-11-23', valid_to: null },
    { id: 2, active: true, valid_from: '2026-01-01', valid_to: '2026-12-13' },
    { id: 3, active: false, valid_from: '2026-11-23', valid_to: null },
    { id: 4, active: true, valid_from: '2027-06-01', valid_to: null },
  ];
  assert.deepEqual(overlapping(plans, '2026-12-14').map((p) => p.id), [1, 4]);
  assert.deepEqual(overlapping(plans, '2026-12-14', '2027-01-10').map((p) => p.id), [1]);
});

test('an editor row becomes a POST /plans item', () => {
  assert.deepEqual(itemBody({ outlet_id: '7', weekday: '3', week_of_cycle: '', window_start: '09:00:00', window_end: '', expected_duration_s: '900', seq: 2 }),
    { outlet_id: 7, weekday: 3, window_start: '09:00', expected_duration_s: 900, seq: 2 });
  assert.deepEqual(itemBody({ outlet_id: 7, visit_date: '2026-12-15', weekday: 1, week_of_cycle: 2 }), { outlet_id: 7, visit_date: '2026-12-15' });
});
