// A visit's verdict in words (src/app/reason.js) in English and Chinese, and the app's other pure
// helpers of the new views (src/app/logic.js): the maps link, the next stop, the month, reminders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { register, setLanguage, t } from '../../src/common/i18n.js';
import { APP_STRINGS } from '../../src/app/strings.js';
import { PHOTO_SIGNALS, SIGNALS, signalsOf, visitReason } from '../../src/app/reason.js';
import { fill, geoLink, monthStart, movedFar, nextStop, reminderUrgency } from '../../src/app/logic.js';
import { requestOf } from '../../src/app/outbox.js';

register(APP_STRINGS);
const noSignals = { mock_fixes: 0, speed_jumps: 0, teleport: false, constant_position: false, constant_accuracy: false, clock_ahead_fixes: 0 };
const visit = (over = {}, evidence = {}) => ({
  verdict: 'verified', dwell_s: 18 * 60, ping_count: 14, min_distance_m: 12.2, median_accuracy_m: 8,
  evidence: { fix_count: 14, min_distance_m: 12.2, median_distance_m: 20, median_accuracy_m: 8, max_gap_s: 60, bridged_gaps_s: [], stay: true, signals: noSignals, ...evidence },
  ...over,
});

test('a verified visit names its fixes, stay, nearest distance and accuracy', () => {
  setLanguage('en');
  assert.equal(visitReason(visit(), { t }), 'verified: 14 fixes over 18 min, nearest 12 m, accuracy 8 m');
  assert.equal(visitReason(visit({}, { photos: { photo_ids: [1], confirming: 1, far: 0, off_time: 0, reused: 0, unverifiable: 0 } }), { t }),
    'verified: 14 fixes over 18 min, nearest 12 m, accuracy 8 m, a photo confirms it');
  setLanguage('zh');
  assert.equal(visitReason(visit(), { t }), '已核实：18 分钟内 14 个定位点，最近 12 米，精度 8 米');
  setLanguage('en');
});

test("a short visit says how long it was and, when known, what the outlet asks", () => {
  const short = visit({ verdict: 'short', dwell_s: 180 });
  assert.equal(visitReason(short, { t, minDwellS: 300 }), 'short: 3 min, the outlet asks 5 min');
  assert.equal(visitReason(short, { t }), 'short: 3 min, less than the outlet asks');
  setLanguage('zh');
  assert.equal(visitReason(short, { t, minDwellS: 300 }), '过短：3 分钟，网点要求 5 分钟');
  setLanguage('en');
});

test('a suspect visit names its spoofing signals and the photos against it', () => {
  const mock = visit({ verdict: 'suspect' }, { signals: { ...noSignals, mock_fixes: 3 } });
  assert.equal(visitReason(mock, { t }), 'suspect: mock locations (3)');
  const many = visit({ verdict: 'suspect' }, { signals: { ...noSignals, teleport: true, constant_position: true }, photos: { photo_ids: [1, 2], confirming: 0, far: 1, off_time: 0, reused: 1, unverifiable: 0 } });
  assert.equal(visitReason(many, { t }), 'suspect: a jump into the outlet, the same position throughout, photo taken far away (1), reused photo (1)');
  assert.equal(visitReason(visit({ verdict: 'suspect' }), { t }), 'suspect: the positions look unreliable');
  setLanguage('zh');
  assert.equal(visitReason(mock, { t }), '可疑：模拟位置 (3)');
  setLanguage('en');
});

test('an unverified visit names the gap it was inferred across, its poor accuracy, or that no position backs it', () => {
  assert.equal(visitReason(visit({ verdict: 'unverified' }, { bridged_gaps_s: [300, 720] }), { t }), 'unverified: positions missing for 12 min');
  assert.equal(visitReason(visit({ verdict: 'unverified', median_accuracy_m: 180 }), { t }), 'unverified: positions too imprecise (accuracy 180 m)');
  const claim = { verdict: 'unverified', dwell_s: 0, ping_count: 0, min_distance_m: null, median_accuracy_m: null, evidence: { fix_count: 0, signals: noSignals, bridged_gaps_s: [] } };
  assert.equal(visitReason(claim, { t }), 'unverified: no positions back it (a check-in your supervisor accepted)');
});

test('every signal the server names has words in both languages', () => {
  const keys = [...SIGNALS.map((k) => `sig_${k}`), ...PHOTO_SIGNALS.map((k) => `sig_photo_${k}`),
    ...['verified', 'short', 'unverified', 'suspect'].map((v) => `verdict_${v}`)];
  for (const l of ['en', 'zh']) assert.deepEqual(keys.filter((k) => !(k in APP_STRINGS[l])), [], l);
  assert.deepEqual(signalsOf({ signals: { ...noSignals, speed_jumps: 2, clock_ahead_fixes: 1 } }), [{ key: 'sig_speed_jumps', count: 2 }, { key: 'sig_clock_ahead_fixes', count: 1 }]);
  assert.deepEqual(signalsOf({}), []);
});

test("the maps link is a geo: URI with the outlet's name as the pin's label", () => {
  assert.equal(geoLink({ lat: 39.95, lon: 116.05, name: 'O1 name' }), 'geo:39.95,116.05?q=39.95,116.05(O1%20name)');
  assert.equal(geoLink({ lat: 39.1234567, lon: -0.1 }), 'geo:39.123457,-0.1?q=39.123457,-0.1');
  assert.equal(geoLink({ lat: 31.2, lon: 121.4, name: '店(1)' }), 'geo:31.2,121.4?q=31.2,121.4(%E5%BA%97(1))');
});

test('the next stop is the first pending or late one in route order', () => {
  const stops = [{ seq: 3, state: 'pending', outlet_id: 3 }, { seq: 1, state: 'done', outlet_id: 1 }, { seq: 2, state: 'late', outlet_id: 2 }];
  assert.equal(nextStop(stops).outlet_id, 2);
  assert.equal(nextStop([{ seq: 1, state: 'done' }, { seq: 2, state: 'missed' }]), null);
  assert.equal(nextStop([]), null);
});

test('month, nearby refresh, templates and reminder urgency', () => {
  assert.equal(monthStart('2026-12-06'), '2026-12-01');
  assert.equal(movedFar(null, null), false);
  assert.equal(movedFar(null, { lat: 1, lon: 1 }), true);
  assert.equal(movedFar({ lat: 39.95, lon: 116.05 }, { lat: 39.951, lon: 116.05 }), false, '111 m');
  assert.equal(movedFar({ lat: 39.95, lon: 116.05 }, { lat: 39.952, lon: 116.05 }), true, '222 m');
  assert.equal(fill('{a} of {b}, {c}', { a: 1, b: 'x' }), '1 of x, {c}');
  assert.equal(reminderUrgency(['due']), 'soon');
  assert.equal(reminderUrgency(['problem', 'due']), 'urgent');
  assert.equal(reminderUrgency(['never_visited']), 'urgent');
});

test('an outbox item with a photo is sent as a form with its fields and the picture; others as JSON', async () => {
  const json = requestOf({ method: 'PUT', body: { a: 1 } });
  assert.deepEqual(json, { method: 'PUT', json: { a: 1 } });
  const file = new Blob([new Uint8Array([0xff, 0xd8, 0xff])], { type: 'image/jpeg' });
  const { method, body } = requestOf({ method: 'PUT', form: { captured_at: '2026-12-06T06:00:00Z', lat: '39.95', lon: '116.05', accuracy_m: '8' }, file, file_name: 'p.jpg' });
  assert.equal(method, 'PUT');
  assert.ok(body instanceof FormData);
  assert.deepEqual([...body.keys()], ['captured_at', 'lat', 'lon', 'accuracy_m', 'photo']);
  assert.equal(body.get('photo').name, 'p.jpg');
  assert.equal(body.get('photo').size, 3);
  assert.equal(body.get('lat'), '39.95');
});
