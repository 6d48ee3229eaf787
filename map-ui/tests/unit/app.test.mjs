// The reps' app's pure logic (src/app/logic.js): client ids, the outbox's order and retry
// decision, the offline distance estimate, stop states, the org's date, the enrolment code, pings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ASSUMED_ALLOWANCE_M, clientId, decide, distanceM, enrolCode, estimate, isClientId, localDate, otherSignIn, pingDue, pingOf, retryDelay, sendOrder, stopState,
} from '../../src/app/logic.js';

test('client ids are what the server accepts: 8-100 of letters, digits and _ . : -', () => {
  const id = clientId('app', '0f8fad5b-d9cb-469f-a165-70867728950e');
  assert.equal(id, 'app-0f8fad5b-d9cb-469f-a165-70867728950e');
  assert.ok(isClientId(id));
  assert.ok(isClientId(clientId()));
  assert.notEqual(clientId(), clientId());
  assert.equal(clientId('a b', 'c/d:e_f.g'), 'a-b-c-d:e_f.g'); // forbidden characters become -
  assert.throws(() => clientId('a b', 'c/d'), /not a valid client id/); // too short
  assert.equal(clientId('p', 'u'.repeat(200)).length, 100);
  for (const bad of ['short', 'has space inside', 'ünïcode-123', 'x'.repeat(101), null]) assert.equal(isClientId(bad), false, bad);
});

test('the outbox sends in the order items were written', () => {
  const items = [{ seq: 3, kind: 'ping' }, { seq: 1, kind: 'checkin' }, { seq: 2, kind: 'ping' }];
  assert.deepEqual(sendOrder(items).map((i) => i.seq), [1, 2, 3]);
  assert.deepEqual(items.map((i) => i.seq), [3, 1, 2], 'the input is not changed');
});

test('a success or a refusal leaves the outbox; no answer, 5xx, 401, 408 and 429 retry', () => {
  for (const s of [200, 201, 204]) assert.equal(decide(s), 'sent', String(s));
  for (const s of [400, 403, 404, 409, 413, 422]) assert.equal(decide(s), 'refused', String(s));
  for (const s of [null, undefined, 0, 401, 408, 429, 500, 502, 503, 504]) assert.equal(decide(s), 'retry', String(s));
  assert.deepEqual([1, 2, 3, 4, 10].map(retryDelay), [5, 10, 20, 40, 300]);
  assert.equal(retryDelay(0), 5);
});

test('distances are great-circle metres; the offline estimate widens the allowance by the accuracy', () => {
  const outlet = { lat: 39.95, lon: 116.05 };
  assert.equal(distanceM(outlet, outlet), 0);
  // 0.001° of latitude is about 111 m.
  assert.ok(Math.abs(distanceM(outlet, { lat: 39.951, lon: 116.05 }) - 111.2) < 0.5);
  // One degree of longitude at the equator is about 111.2 km.
  assert.ok(Math.abs(distanceM({ lat: 0, lon: 0 }, { lat: 0, lon: 1 }) - 111195) < 10);
  assert.deepEqual(estimate({ ...outlet, accuracy_m: 10 }, outlet), { distance_m: 0, likely_at_outlet: true });
  const near = { lat: 39.951, lon: 116.05 };
  assert.equal(estimate({ ...near, accuracy_m: 5 }, outlet).likely_at_outlet, false, `111 m > ${ASSUMED_ALLOWANCE_M} + 5`);
  assert.equal(estimate({ ...near, accuracy_m: 20 }, outlet).likely_at_outlet, true);
  assert.equal(estimate(near, outlet, 150).likely_at_outlet, true);
  // A poor fix widens the allowance no more than the server's cap: ~222 m away is not "at" with 500 m accuracy.
  const far = { lat: 39.952, lon: 116.05 };
  assert.equal(estimate({ ...far, accuracy_m: 500 }, outlet).likely_at_outlet, false, `222 m > ${ASSUMED_ALLOWANCE_M} + 50`);
});

test('a stop is done once checked in, else missed after its day, late after its window, else pending', () => {
  const now = new Date('2026-12-06T06:00:00Z');
  const stop = { window_start: '2026-12-06T01:00:00Z', window_end: '2026-12-06T04:00:00Z' };
  assert.equal(stopState(stop, { checkedIn: true, now, dayOver: true }), 'done');
  assert.equal(stopState(stop, { now, dayOver: true }), 'missed');
  assert.equal(stopState(stop, { now }), 'late');
  assert.equal(stopState({ ...stop, window_end: '2026-12-06T08:00:00Z' }, { now }), 'pending');
  assert.equal(stopState({ window_start: null, window_end: null }, { now }), 'pending');
});

test("today is the org's date, and the enrolment code comes from the link's hash", () => {
  const t = new Date('2026-12-06T17:00:00Z');
  assert.equal(localDate(t, 'Asia/Shanghai'), '2026-12-07');
  assert.equal(localDate(t, 'UTC'), '2026-12-06');
  assert.match(localDate(t, 'Not/AZone'), /^\d{4}-\d{2}-\d{2}$/);
  assert.equal(enrolCode('#enrol=abc-DEF_123'), 'abc-DEF_123');
  assert.equal(enrolCode('#x=1&enrol=q%2Bz'), 'q+z');
  assert.equal(enrolCode(''), null);
  assert.equal(enrolCode('#enrolment=1'), null);
});

test('a ping carries the API field names and the phone id of the fix', () => {
  const fix = { lat: 39.95, lon: 116.05, accuracy_m: 8, time: Date.parse('2026-12-06T06:00:00Z') };
  assert.deepEqual(pingOf(fix, 'ping-1'), { fix_time: '2026-12-06T06:00:00.000Z', lat: 39.95, lon: 116.05, accuracy_m: 8, ping_id: 'ping-1' });
  assert.equal('accuracy_m' in pingOf({ ...fix, accuracy_m: 0 }, 'p'), false);
});

test('a fix goes out as a ping every 15 s, every 5 s while checked in, and never twice', () => {
  const fix = { time: 100000, lat: 1, lon: 2 };
  const at = (now, more = {}) => pingDue({ fix, lastPinged: 0, lastSentAt: 90000, now, checkedIn: false, ...more });
  assert.equal(at(95000), false);
  assert.equal(at(95000, { checkedIn: true }), true);
  assert.equal(at(104999), false);
  assert.equal(at(105000), true);
  assert.equal(at(200000, { lastPinged: 100000 }), false, 'the same fix is not sent again');
  assert.equal(pingDue({ fix: null, lastPinged: 0, lastSentAt: 0, now: 1e9, checkedIn: true }), false);
  assert.equal(pingDue({ fix, lastPinged: 0, lastSentAt: 0, now: 100000, checkedIn: false }), true, 'the first fix goes at once');
});

test("a write made under another sign-in is not sent with the new device's token", () => {
  assert.equal(otherSignIn({ device_id: 7 }, 7), false);
  assert.equal(otherSignIn({ device_id: 7 }, 8), true);
  assert.equal(otherSignIn({}, 8), false, 'written before writes were stamped');
  assert.equal(otherSignIn({ device_id: 7 }, null), false, 'device not known');
});
