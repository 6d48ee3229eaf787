// The shown numbers, durations, distances, days and times (src/common/format.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MISSING, addDays, clock, dateTime, dayIn, distance, hm, hourMinute, isoDay, metres, minutes, pct, visitCount } from '../../src/common/format.js';

test('a percentage has one decimal; none shows as a dash', () => {
  assert.equal(pct(12.345), '12.3%');
  assert.equal(pct(0), '0.0%');
  assert.equal(pct(100), '100.0%');
  assert.equal(pct(null), '–');
  assert.equal(pct(undefined), MISSING);
});

test('a duration is h:mm rounded to the minute', () => {
  assert.equal(hm(0), '0:00');
  assert.equal(hm(null), '0:00');
  assert.equal(hm(59), '0:01');
  assert.equal(hm(29), '0:00');
  assert.equal(hm(3600), '1:00');
  assert.equal(hm(7 * 3600 + 5 * 60 + 31), '7:06');
  assert.equal(hm(25 * 3600), '25:00');
  assert.equal(minutes(1250), 21);
});

test('distances: whole metres, then kilometres with one decimal', () => {
  assert.equal(metres(12.6), '13 m');
  assert.equal(metres(12.4, '米'), '12 米');
  assert.equal(metres(null), '–');
  assert.equal(metres(0), '0 m');
  assert.equal(distance(999.4), '999 m');
  assert.equal(distance(999.6), '1.0 km');
  assert.equal(distance(12345), '12.3 km');
  assert.equal(distance(250, { m: '米', km: '公里' }), '250 米');
  assert.equal(distance(1500, { m: '米', km: '公里' }), '1.5 公里');
  assert.equal(distance(undefined), '–');
  assert.equal(distance(NaN), '–');
});

test('a required visit count is whole, or has two decimals', () => {
  assert.equal(visitCount(4), '4');
  assert.equal(visitCount(4.333333), '4.33');
  assert.equal(visitCount(0.5), '0.50');
});

test('days: the UTC day, the day in a time zone, days apart', () => {
  const late = new Date('2024-05-01T20:30:00Z');
  assert.equal(isoDay(late), '2024-05-01');
  // 04:30 the next morning in Beijing, still the evening before in New York's summer time.
  assert.equal(dayIn(late, 'Asia/Shanghai'), '2024-05-02');
  assert.equal(dayIn(late, 'America/New_York'), '2024-05-01');
  assert.equal(dayIn('2024-12-31T16:00:00Z', 'Asia/Shanghai'), '2025-01-01');
  assert.equal(isoDay(addDays(new Date('2024-03-01T00:00:00Z'), -1)), '2024-02-29');
  assert.equal(isoDay(addDays(new Date('2024-05-01T12:00:00Z'), -27)), '2024-04-04');
});

test('times of day in a locale and a time zone', () => {
  const at = '2024-05-01T01:02:03Z';
  assert.equal(clock(at, 'en-GB', 'UTC'), '01:02:03');
  assert.equal(clock(at, 'en-GB', 'Asia/Shanghai'), '09:02:03');
  assert.equal(clock(at, 'zh-CN', 'Asia/Shanghai'), '09:02:03');
  assert.equal(hourMinute(at, 'en-GB', 'Asia/Shanghai'), '09:02');
  assert.equal(hourMinute(null, 'en-GB'), '');
  assert.equal(dateTime(at, 'en-GB', 'Asia/Shanghai'), '01/05/2024, 09:02:03');
  assert.equal(dateTime(at, 'zh-CN', 'Asia/Shanghai'), '2024/5/1 09:02:03');
  assert.equal(dateTime(null, 'en-GB'), '–');
});

test('without a time zone, times are the same as the browser default formatting', () => {
  const at = '2024-05-01T01:02:03Z';
  assert.equal(clock(at, 'en-GB'), new Date(at).toLocaleTimeString('en-GB'));
  assert.equal(dateTime(at, 'zh-CN'), new Date(at).toLocaleString('zh-CN'));
  assert.equal(hourMinute(at, 'en-GB'), new Date(at).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' }));
});
