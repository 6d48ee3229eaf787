// The workbench forms' pure helpers: the server's field errors by field, and working hours typed as text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorTargets, fieldMessages, intervalsText, parseIntervals, parseWeek } from '../../src/map/views/form.js';

test('field errors are grouped by field, those without one under the empty name', () => {
  assert.deepEqual(fieldMessages([
    { field: 'name', reason: 'blank' }, { field: 'items[2].weekday', reason: 'not 1-7' }, { field: 'name', reason: 'long' }, { reason: 'x' },
  ]), { name: ['blank', 'long'], 'items[2].weekday': ['not 1-7'], '': ['x'] });
  assert.deepEqual(fieldMessages(undefined), {});
});

test('a day of working hours reads back as the API stores it', () => {
  assert.deepEqual(parseIntervals('9:00-12:00, 13:00 - 18:30'), { intervals: [['09:00', '12:00'], ['13:00', '18:30']] });
  assert.deepEqual(parseIntervals('08:00~24:00'), { intervals: [['08:00', '24:00']] });
  assert.deepEqual(parseIntervals(''), { intervals: [] });
  assert.equal(intervalsText(parseIntervals('09:00-12:00,13:00-18:00').intervals), '09:00-12:00, 13:00-18:00');
  for (const bad of ['9-17', '25:00-26:00', '09:60-10:00', '24:30-24:40', 'noon']) assert.ok(parseIntervals(bad).error, bad);
});

test('a week leaves out the days off and names each wrong day', () => {
  assert.deepEqual(parseWeek({ mon: '09:00-18:00', tue: '', sat: '10:00-14:00' }),
    { hours: { mon: [['09:00', '18:00']], sat: [['10:00', '14:00']] } });
  assert.deepEqual(Object.keys(parseWeek({ mon: '9 to 5', fri: 'x' }).errors), ['mon', 'fri']);
});

test('a field error is shown at the field, else at the nearest path that encloses it', () => {
  assert.deepEqual(errorTargets('pings.working_hours.mon[0]'),
    ['pings.working_hours.mon[0]', 'pings.working_hours.mon', 'pings.working_hours', 'pings']);
  assert.deepEqual(errorTargets('items[2].weekday'), ['items[2].weekday', 'items[2]', 'items']);
  assert.deepEqual(errorTargets('name'), ['name']);
});
