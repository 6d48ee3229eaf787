// The reps' app's checklist helpers (src/app/checklist.js): the latest version of each checklist,
// the answer a form field gives, and the check of the answers, the same as the server's
// (crates/fieldvisit-domain/src/checklist.rs: its test checklist and cases are reused here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answerOf, checkAnswers, latestChecklists } from '../../src/app/checklist.js';
import { APP_STRINGS } from '../../src/app/strings.js';

const ITEMS = [
  { key: 'display_ok', label: 'Display check', type: 'yes_no', required: true, expect: true },
  { key: 'sim_stock', label: 'SIM stock count', type: 'number', integer: true, min: 0, max: 100000, expect_min: 10 },
  { key: 'competitor', label: 'Competitor present', type: 'choice', choices: ['none', 'mtn', 'airtel'], expect_in: ['none'] },
  { key: 'materials', label: 'Promotional material', type: 'choice', multiple: true, choices: ['poster', 'banner', 'shelf'] },
  { key: 'remarks', label: 'Remarks', type: 'text', max_length: 20 },
];
const codes = (errors) => errors.map((e) => [e.field, e.code]);

test('the latest version of each checklist name is shown, by name', () => {
  const list = [
    { id: 1, name: 'Shelf', version: 1 }, { id: 4, name: 'Shelf', version: 3 }, { id: 2, name: 'Audit', version: 1 }, { id: 3, name: 'Shelf', version: 2 },
  ];
  assert.deepEqual(latestChecklists(list).map((c) => c.id), [2, 4]);
  assert.deepEqual(latestChecklists(), []);
});

test('good answers pass, problems (outside expect) are not errors', () => {
  assert.deepEqual(checkAnswers(ITEMS, { display_ok: false, sim_stock: 4, competitor: 'mtn', materials: ['poster'], remarks: 'ok' }), []);
  assert.deepEqual(checkAnswers(ITEMS, { display_ok: true, sim_stock: 50 }), []);
});

test('wrong answers are named item by item, as the server names them', () => {
  const errors = checkAnswers(ITEMS, { sim_stock: 'many', competitor: 'vodafone', materials: 'poster', remarks: 'far too long for this field', colour: 'red' });
  assert.deepEqual(codes(errors), [
    ['answers.colour', 'unknown'], ['answers.display_ok', 'required'], ['answers.sim_stock', 'not_number'],
    ['answers.competitor', 'not_choice'], ['answers.materials', 'not_list'], ['answers.remarks', 'too_long'],
  ]);
  assert.deepEqual(errors[3].params, { value: 'vodafone', choices: 'none, mtn, airtel' });
  assert.deepEqual(errors[5].params, { max: 20 });
  assert.deepEqual(codes(checkAnswers(ITEMS, { display_ok: 'yes', sim_stock: 2.5 })), [['answers.display_ok', 'not_bool'], ['answers.sim_stock', 'not_whole']]);
  const range = checkAnswers(ITEMS, { display_ok: true, sim_stock: -1 });
  assert.deepEqual(codes(range), [['answers.sim_stock', 'range']]);
  assert.deepEqual(range[0].params, { min: 0, max: 100000 });
  assert.deepEqual(codes(checkAnswers(ITEMS, { display_ok: true, materials: ['poster', 'flag'] })), [['answers.materials', 'not_choice']]);
  assert.deepEqual(codes(checkAnswers(ITEMS, { display_ok: true, remarks: 5 })), [['answers.remarks', 'not_text']]);
});

test('a text is measured in characters and 1000 is the default limit', () => {
  const items = [{ key: 'note', type: 'text' }, { key: 'short', type: 'text', max_length: 3 }];
  assert.deepEqual(checkAnswers(items, { note: 'x'.repeat(1000), short: '你好吗' }), []);
  assert.deepEqual(codes(checkAnswers(items, { note: 'x'.repeat(1001), short: '你好吗?' })), [['answers.note', 'too_long'], ['answers.short', 'too_long']]);
});

test('numbers without an integer rule take fractions; open bounds are open', () => {
  const items = [{ key: 'temp', type: 'number', min: -10 }];
  assert.deepEqual(checkAnswers(items, { temp: 3.5 }), []);
  assert.deepEqual(checkAnswers(items, { temp: 1e9 }), []);
  assert.deepEqual(checkAnswers(items, { temp: -11 })[0].params, { min: -10, max: '∞' });
});

test('a form field gives the answer: empty is unanswered, numbers become numbers, yes/no booleans', () => {
  const [yes, num, one, many, text] = ITEMS;
  assert.equal(answerOf(yes, 'true'), true);
  assert.equal(answerOf(yes, 'false'), false);
  assert.equal(answerOf(yes, ''), null);
  assert.equal(answerOf(num, ' 12 '), 12);
  assert.equal(answerOf(num, '1.5'), 1.5);
  assert.equal(answerOf(num, 'abc'), 'abc', 'kept as text, so the check names it');
  assert.equal(answerOf(num, '   '), null);
  assert.equal(answerOf(one, 'mtn'), 'mtn');
  assert.deepEqual(answerOf(many, ['poster', 'shelf']), ['poster', 'shelf']);
  assert.equal(answerOf(many, []), null);
  assert.equal(answerOf(text, 'all fine'), 'all fine');
});

test('every check code has its message in English and Chinese', () => {
  const all = ['unknown', 'required', 'not_bool', 'not_number', 'not_whole', 'range', 'not_choice', 'not_list', 'not_text', 'too_long'];
  for (const l of ['en', 'zh']) assert.deepEqual(all.filter((c) => !(`check_${c}` in APP_STRINGS[l])), [], l);
});
