// The reps' app's day loading (src/app/logic.js and index.html's early start): the paths of the
// day's data, whether a kept plan is today's, taking over the requests index.html started, and
// when a refreshed answer changes what the page shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { dayPaths, earlyFor, fingerprint, isTodayPlan, keptDayState, localDate } from '../../src/app/logic.js';

test("the day's paths: the org's today on the server unless a date is given", () => {
  assert.deepEqual(dayPaths(7), { me: '/me', plan: '/reps/7/plan', checkins: '/reps/7/checkins' });
  assert.deepEqual(dayPaths(7, '2025-03-04'), { me: '/me', plan: '/reps/7/plan?date=2025-03-04', checkins: '/reps/7/checkins?from=2025-03-04' });
});

test("a plan is today's in the org's time zone, not the phone's", () => {
  const now = new Date('2025-03-10T17:30:00Z'); // 01:30 on the 11th in Shanghai, still the 10th in London
  assert.equal(isTodayPlan({ date: '2025-03-11' }, 'Asia/Shanghai', now), true);
  assert.equal(isTodayPlan({ date: '2025-03-10' }, 'Asia/Shanghai', now), false);
  assert.equal(isTodayPlan({ date: '2025-03-10' }, 'Europe/London', now), true);
  assert.equal(isTodayPlan(null, 'Asia/Shanghai', now), false);
  assert.equal(isTodayPlan({}, 'Asia/Shanghai', now), false);
});

test("what the phone kept: today's plan is drawn at once, another day's is not taken for today's", () => {
  const now = new Date('2025-03-10T03:00:00Z');
  const me = { rep_id: 7, org: { timezone: 'Asia/Shanghai' } };
  assert.equal(keptDayState({ me, plan: { date: '2025-03-10', visits: [] } }, now), 'today');
  assert.equal(keptDayState({ me, plan: { date: '2025-03-09', visits: [{ seq: 1 }] } }, now), 'other');
  assert.equal(keptDayState({ me, plan: null }, now), 'none');
  assert.equal(keptDayState({ me, plan: { date: '2025-03-10' } }, now), 'none', 'no visits: not a day plan');
  assert.equal(keptDayState({}, now), 'none');
  assert.equal(keptDayState(undefined, now), 'none');
  // Without the org's time zone kept, the phone's own date decides.
  assert.equal(keptDayState({ plan: { date: localDate(now), visits: [] } }, now), 'today');
});

test("the early requests are taken over only when they are the app's own: same token, rep and day", () => {
  const sent = () => Promise.resolve({ ok: true });
  const early = { token: 'tok', repId: 7, date: '2025-03-10', me: sent(), plan: sent(), checkins: sent() };
  assert.equal(earlyFor(early, { token: 'tok', repId: 7, date: '2025-03-10' }), early);
  assert.equal(earlyFor(early, { token: 'other', repId: 7, date: '2025-03-10' }), null, 'another token (enrolled again)');
  assert.equal(earlyFor(early, { token: 'tok', repId: 8, date: '2025-03-10' }), null, 'another rep');
  assert.equal(earlyFor(early, { token: 'tok', repId: 7, date: '2025-03-11' }), null, 'the day turned meanwhile');
  assert.equal(earlyFor(early, { token: 'tok', repId: 7, date: null }), null);
  const dateless = { ...early, date: null };
  assert.equal(earlyFor(dateless, { token: 'tok', repId: 7, date: null }), dateless);
  assert.equal(earlyFor({ ...early, plan: undefined }, { token: 'tok', repId: 7, date: '2025-03-10' }), null, 'a request missing');
  assert.equal(earlyFor(null, { token: 'tok', repId: 7 }), null);
  assert.equal(earlyFor(undefined, { token: null, repId: 7 }), null);
  assert.equal(earlyFor({ ...early, token: null }, { token: null, repId: 7, date: '2025-03-10' }), null, 'no token: nothing to take over');
});

test('a refresh redraws only when what is shown changed: when it was loaded does not count', () => {
  const a = { plan: { date: '2025-03-10', visits: [{ seq: 1, outlet_id: 3 }] }, fromPhone: false };
  assert.equal(fingerprint(a), fingerprint(structuredClone(a)));
  assert.notEqual(fingerprint(a), fingerprint({ ...a, fromPhone: true }));
  assert.notEqual(fingerprint(a), fingerprint({ ...a, plan: { ...a.plan, visits: [] } }));
  assert.equal(fingerprint({ visits: [], loaded_at: '2025-03-10T01:00:00Z' }), fingerprint({ visits: [], loaded_at: '2025-03-10T02:00:00Z' }));
  assert.equal(fingerprint(null), fingerprint(undefined));
});

/** Runs index.html's inline script with this storage, address and network state; answers what it asked for and left. */
function runEarlyStart({ storage = {}, hash = '', onLine = true } = {}) {
  const html = readFileSync(new URL('../../src/app/index.html', import.meta.url), 'utf8');
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
  assert.equal(scripts.length, 1, 'one inline script');
  const asked = [];
  const sandbox = {
    localStorage: { getItem: (k) => (k in storage ? storage[k] : null) },
    location: { hash },
    navigator: { onLine },
    fetch: (url, options) => { asked.push({ url, auth: options?.headers?.Authorization }); return Promise.resolve({ url }); },
  };
  sandbox.window = sandbox;
  vm.runInNewContext(scripts[0], sandbox);
  return { asked, early: sandbox.fvEarlyDay };
}

test("index.html's early start asks for the day's paths at once, with the token in the header", () => {
  const me = { rep_id: 7, org: { timezone: 'Asia/Shanghai' } };
  const storage = { 'fv.app.token': 'tok', 'fv.app.rep': JSON.stringify({ id: 7, name: 'Rep' }), 'fv.app.me': JSON.stringify(me) };
  const { asked, early } = runEarlyStart({ storage });
  const date = localDate(new Date(), 'Asia/Shanghai');
  const paths = dayPaths(7, date);
  assert.deepEqual(asked.map((a) => a.url), [paths.me, paths.plan, paths.checkins].map((p) => `/api/v1${p}`));
  assert.ok(asked.every((a) => a.auth === 'Bearer tok'));
  assert.ok(asked.every((a) => !a.url.includes('tok')), 'no token in an address');
  assert.equal(early.date, date);
  assert.equal(earlyFor(early, { token: 'tok', repId: 7, date }), early, 'day.js takes them over');
});

test("index.html's early start, just enrolled (no day kept): the server's today", () => {
  const { asked, early } = runEarlyStart({ storage: { 'fv.app.token': 'tok', 'fv.app.rep': JSON.stringify({ id: 7 }) } });
  assert.deepEqual(asked.map((a) => a.url), Object.values(dayPaths(7)).map((p) => `/api/v1${p}`));
  assert.equal(earlyFor(early, { token: 'tok', repId: 7, date: null }), early);
});

test("index.html's early start asks nothing offline, without a token or rep, or with a link to enrol", () => {
  const storage = { 'fv.app.token': 'tok', 'fv.app.rep': JSON.stringify({ id: 7 }) };
  for (const [why, run] of [
    ['offline', { storage, onLine: false }],
    ['enrolling', { storage, hash: '#enrol=abc' }],
    ['no token', { storage: { 'fv.app.rep': storage['fv.app.rep'] } }],
    ['no rep', { storage: { 'fv.app.token': 'tok' } }],
    ['broken storage', { storage: { 'fv.app.token': 'tok', 'fv.app.rep': '{not json' } }],
  ]) {
    const { asked, early } = runEarlyStart(run);
    assert.deepEqual(asked, [], why);
    assert.equal(early, undefined, why);
  }
});
