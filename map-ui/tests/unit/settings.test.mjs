// The settings view's pure helpers: checklist items between the API and the editor, and a change
// of the ping settings as only the keys the admin changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { itemFields, itemOf, itemsFromEntries, parseList, pingsChange, pingsShown } from '../../src/map/views/settings-model.js';

test('an item read into the editor and back is the item the API gave', () => {
  const items = [
    { key: 'display_ok', label: 'Display in place', type: 'yes_no', required: true, expect: true },
    { key: 'sim_stock', label: 'SIM stock', type: 'number', required: true, integer: true, min: 0, max: 100000, expect_min: 10, outlet_attribute: 'sim_stock' },
    { key: 'brands', label: 'Brands shown', type: 'choice', required: false, choices: ['a', 'b', 'c'], multiple: true, expect_in: ['a'] },
    { key: 'note', label: 'Note', type: 'text', required: false, max_length: 200 },
    { key: 'open', label: 'Open?', type: 'yes_no', required: false },
  ];
  for (const item of items) assert.deepEqual(itemOf(itemFields(item)), item);
});

test('an item keeps only the fields of its type, and a number typed wrong goes to the server as typed', () => {
  const f = { ...itemFields({ key: ' k ', label: 'L', type: 'number', min: 1 }), choices: 'x, y', expect: 'true', max: 'abc' };
  assert.deepEqual(itemOf(f), { key: 'k', label: 'L', type: 'number', required: false, integer: false, min: 1, max: 'abc' });
  assert.deepEqual(itemOf({ ...f, type: 'yes_no', expect: 'false' }), { key: 'k', label: 'L', type: 'yes_no', required: false, expect: false });
  assert.deepEqual(itemOf({ ...f, type: 'choice' }).choices, ['x', 'y']);
});

test('choices are typed comma-, semicolon- or line-separated, in either script', () => {
  assert.deepEqual(parseList('a, b;c\nd，e； '), ['a', 'b', 'c', 'd', 'e']);
  assert.deepEqual(parseList(''), []);
});

test("a form's entries make the items, unchecked boxes false", () => {
  const entries = [['name', 'x'], ['items[0].key', 'a'], ['items[0].required', 'on'], ['items[1].key', 'b'], ['items[1].type', 'text'], ['items[5].key', 'z']];
  const items = itemsFromEntries(entries, 2);
  assert.equal(items.length, 2);
  assert.deepEqual([items[0].key, items[0].required, items[0].integer], ['a', true, false]);
  assert.deepEqual([items[1].key, items[1].type, items[1].required], ['b', 'text', false]);
});

test('a ping settings change holds only what changed; an emptied number resets it', () => {
  const answer = {
    settings: { retention_days: 90, working_hours: { tue: [['09:00', '18:00']], mon: [['09:00', '18:00']] } },
    retention_days: 90, working_hours_only: false, blur_home: false, home_radius_m: 300, pings_kept_from: null,
  };
  const before = pingsShown(answer);
  assert.deepEqual(before, {
    retention_days: '90', utc_offset_minutes: '', home_radius_m: '300', working_hours_only: false, blur_home: false,
    working_hours: answer.settings.working_hours,
  });
  // The same week in another order is no change.
  const same = { ...before, working_hours: { mon: [['09:00', '18:00']], tue: [['09:00', '18:00']] } };
  assert.deepEqual(pingsChange(before, same), {});
  assert.deepEqual(pingsChange(before, { ...before, retention_days: ' 0 ', blur_home: true }), { retention_days: 0, blur_home: true });
  assert.deepEqual(pingsChange(before, { ...before, retention_days: '', home_radius_m: 'x' }), { retention_days: null, home_radius_m: 'x' });
  assert.deepEqual(pingsChange(before, { ...before, working_hours: {} }), { working_hours: null });
  assert.deepEqual(pingsChange(before, { ...before, utc_offset_minutes: '480' }), { utc_offset_minutes: 480 });
});
