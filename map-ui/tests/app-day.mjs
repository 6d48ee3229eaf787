// A day walked with the reps' app alone (issue 24's "must show"), with playwright-core driving
// Debian's chromium as a phone (390x844, touch) against a real server. The phone enrols from its
// link, then walks a real GeoLife stop moved onto the planned outlet (FV_WALK: the geolocation
// moves fix by fix). In the shop the network is off: check in, stay, photograph the shop (a real
// JPEG with EXIF, FV_PHOTO, through the file input), answer the checklist, check out, walk away.
// Reloaded offline, the outbox is still there, and the server counted no request meanwhile
// (its /metrics). Online again, the answer to the first sync request is lost after the server
// committed it; the app retries. The app then shows the verified visit with its reason; once the
// manager deactivates the phone, the app says it is signed out. Run by
// tests/integration/reps_app.rs, which checks the server's rows afterwards.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import assert from 'node:assert/strict';

const env = process.env;
const [base, link, outletId, photo] = [env.FV_BASE_URL, env.FV_ENROL_URL, env.FV_OUTLET_ID, env.FV_PHOTO];
const walk = JSON.parse(env.FV_WALK || '[]');
assert.ok(base && link && outletId && photo && walk.length, 'FV_BASE_URL, FV_ENROL_URL, FV_OUTLET_ID, FV_PHOTO and FV_WALK are needed');
const shots = env.FV_SCREENSHOTS || new URL('../../target/map-ui-screenshots/', import.meta.url).pathname;
mkdirSync(shots, { recursive: true });
const origin = new URL(base).origin;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const browser = await chromium.launch({ executablePath: env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
const where = (p) => ({ latitude: p.lat, longitude: p.lon, accuracy: p.accuracy_m });
const context = await browser.newContext({
  viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'en-GB',
  geolocation: where(walk[0]), permissions: ['geolocation'],
});
const page = await context.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));

/** Requests the server has answered, by its own count (/metrics, not counting the scrapes). */
async function serverRequests() {
  const text = await (await fetch(`${origin}/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n')) {
    const m = /^http_requests_total\{(.*)\} (\d+)/.exec(line);
    if (m && !/route="\/metrics"/.test(m[1])) n += Number(m[2]);
  }
  return n;
}

const results = [];
async function check(name, fn) {
  try { await fn(); results.push(`ok   ${name}`); } catch (e) { results.push(`FAIL ${name}: ${e.message}`); process.exitCode = 1; }
}
const stop = page.locator(`li.stop[data-outlet="${outletId}"]`);
const waiting = () => page.evaluate(async () => (await window.fieldvisitApp.outbox.waiting()).map((i) => i.kind));
const waitingSeqs = () => page.evaluate(async () => (await window.fieldvisitApp.outbox.waiting()).map((i) => i.seq));
/** Moves the phone through the walk's fixes of `phase`, `ms` apart; `during(i)` after the i-th. */
async function walkPhase(phase, ms, during = async () => {}) {
  const fixes = walk.filter((p) => p.phase === phase);
  for (const [i, p] of fixes.entries()) {
    await context.setGeolocation(where(p));
    await sleep(ms);
    await during(i);
  }
}

await check('the enrolment link signs the phone in and lists the planned stop', async () => {
  await page.goto(link);
  await page.waitForFunction(() => window.fieldvisitApp?.ready === true, null, { timeout: 30000 });
  await stop.waitFor({ timeout: 15000 });
  await page.waitForFunction(() => navigator.serviceWorker?.controller != null, null, { timeout: 20000 });
});

await check('walking in, the phone\'s fixes go to the server as pings', async () => {
  const sent = page.waitForResponse((r) => r.url() === `${origin}/api/v1/pings` && r.status() === 200, { timeout: 30000 });
  await walkPhase('approach', 1500);
  await sent;
});

let before = 0;
let kept = [];
await check('in the shop with no network: check in, stay, photograph, answer the checklist, check out — all to the outbox', async () => {
  await context.setOffline(true);
  await page.waitForFunction(() => navigator.onLine === false);
  await page.waitForFunction(() => window.fieldvisitApp.waiting.length === 0, null, { timeout: 20000 }).catch(() => {});
  before = await serverRequests();
  await stop.locator('button.checkin').tap();
  await page.locator('#result[data-outcome=to_confirm]').waitFor({ timeout: 20000 });
  await walkPhase('stay', 4000, async (i) => {
    if (i === 4) {
      await page.locator('#evidence').waitFor({ state: 'visible', timeout: 5000 });
      await page.locator('#photo-input').setInputFiles(photo);
      await page.waitForFunction(() => window.fieldvisitApp.waiting.some((x) => x.kind === 'photo'), null, { timeout: 5000 });
    }
    if (i === 8) {
      const form = page.locator('#checklist');
      await form.locator('input[name=display_ok][value=true]').check();
      await form.locator('[name=facings]').fill('6');
      await form.locator('[data-testid=save-answers]').tap();
      await page.waitForFunction(() => window.fieldvisitApp.waiting.some((x) => x.kind === 'answers'), null, { timeout: 5000 });
    }
  });
  await stop.locator('button.checkout').tap();
  await page.waitForFunction(() => window.fieldvisitApp.waiting.some((x) => x.kind === 'checkout'), null, { timeout: 5000 });
  await walkPhase('leave', 1500);
  const kinds = await waiting();
  for (const k of ['checkin', 'photo', 'answers', 'checkout', 'ping']) assert.ok(kinds.includes(k), `${k} waits: ${kinds}`);
  assert.ok(kinds.filter((k) => k === 'ping').length >= 12, `the stay's fixes wait as pings: ${kinds}`);
  kept = await waitingSeqs();
  await page.screenshot({ path: `${shots}/app-day-offline.png`, fullPage: true });
});

await check('reloaded with no network, the app, the day and the whole outbox are still there', async () => {
  await page.reload();
  await page.waitForFunction(() => window.fieldvisitApp?.ready === true, null, { timeout: 30000 });
  await stop.waitFor({ timeout: 10000 });
  assert.equal(await stop.getAttribute('data-state'), 'done');
  // Every write made offline still waits (the reloaded app may have added a ping of its new fix).
  const now = await waitingSeqs();
  assert.deepEqual(now.filter((seq) => kept.includes(seq)), kept);
  assert.equal(Number(await page.locator('#outbox-count').textContent()), now.length);
});

await check('while offline the server received no request from the phone (its own count)', async () => {
  assert.equal(await serverRequests(), before);
});

let lost = null;
await check('online again, the first sync request is committed but its answer lost; the retry adds nothing', async () => {
  await page.route('**/api/v1/**', async (route) => {
    const req = route.request();
    if (lost || req.method() === 'GET') return route.continue();
    const res = await route.fetch();
    lost = { method: req.method(), path: new URL(req.url()).pathname, status: res.status() };
    return route.abort('connectionreset');
  });
  await context.setOffline(false);
  await page.waitForFunction(() => window.fieldvisitApp.waiting.length === 0 && window.fieldvisitApp.refused.length === 0, null, { timeout: 90000 });
  assert.ok(lost && lost.status >= 200 && lost.status < 300, `the lost answer was a success: ${JSON.stringify(lost)}`);
  await page.unroute('**/api/v1/**');
});

let card = null;
await check('the app shows the verified visit at the outlet with the reason in words', async () => {
  const deadline = Date.now() + 90000;
  for (;;) {
    await page.reload();
    await page.waitForFunction(() => window.fieldvisitApp?.ready === true && window.fieldvisitApp.record?.visits != null, null, { timeout: 30000 });
    // The visit, and the check-in it confirms, once derivation has caught up (the app reads the
    // check-ins before the record, so both must be in the same load).
    const id = await page.evaluate((o) => {
      const app = window.fieldvisitApp;
      const confirmed = (app.serverCheckins ?? []).some((c) => c.outlet_id === Number(o) && c.status === 'confirmed');
      return confirmed ? app.record.visits.find((v) => v.outlet_id === Number(o) && v.verdict === 'verified')?.id : null;
    }, outletId);
    if (id) { card = page.locator(`li[data-visit="${id}"]`); break; }
    assert.ok(Date.now() < deadline, 'no verified visit confirming the check-in within 90 s');
    await sleep(2000);
  }
  await page.locator('#tab-record').tap();
  await card.waitFor({ timeout: 10000 });
  assert.equal(await card.getAttribute('data-verdict'), 'verified');
  const reason = await card.locator('[data-testid=reason]').textContent();
  assert.match(reason, /^verified: \d+ fixes over \d+ min, nearest \d+ m, accuracy \d+ m, a photo confirms it$/);
  await page.screenshot({ path: `${shots}/app-day-record.png`, fullPage: true });
});

await check('the check-in is confirmed by that visit, which the phone shows', async () => {
  const c = await page.evaluate((o) => window.fieldvisitApp.serverCheckins.find((x) => x.outlet_id === Number(o)), outletId);
  assert.equal(c.status, 'confirmed');
  assert.equal(`${c.visit_id}`, await card.getAttribute('data-visit'));
  assert.equal(c.evidence_unlinked, false);
  assert.equal(await page.locator(`#record-checkins li[data-testid=record-checkin][data-status=confirmed]`).count(), 1);
});

await check('at 360 px wide nothing scrolls sideways and every button is big enough to touch', async () => {
  await page.setViewportSize({ width: 360, height: 740 });
  for (const tab of ['#tab-today', '#tab-record']) {
    await page.locator(tab).tap();
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 360), `${tab}: sideways scrolling`);
    const targets = await page.evaluate(() => [...document.querySelectorAll('button, a.maps, label.choice')]
      .filter((b) => b.offsetParent !== null)
      .map((b) => ({ what: b.textContent.trim().slice(0, 30), h: b.getBoundingClientRect().height })));
    assert.ok(targets.length >= 3, `${tab}: ${JSON.stringify(targets)}`);
    assert.deepEqual(targets.filter((b) => b.h < 44), [], `${tab}: touch targets under 44 px`);
  }
  await page.screenshot({ path: `${shots}/app-day-360.png`, fullPage: true });
});

await check('a phone its manager deactivates is refused: the app says it is signed out', async () => {
  const res = await fetch(`${origin}/api/v1/devices/${env.FV_DEVICE_ID}`, {
    method: 'PATCH', headers: { authorization: `Bearer ${env.FV_ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ active: false }),
  });
  assert.equal(res.status, 200);
  await page.reload();
  await page.waitForFunction(() => window.fieldvisitApp?.ready === true, null, { timeout: 30000 });
  await page.locator('#enrol').waitFor({ state: 'visible', timeout: 10000 });
  assert.match(await page.locator('#enrol-text').textContent(), /signed out/);
  assert.equal(await page.evaluate(() => localStorage.getItem('fv.app.token')), null, 'the refused token is dropped');
});

await check('no page errors', async () => {
  assert.deepEqual(errors, []);
});

await browser.close();
console.log(results.join('\n'));
if (lost) console.log(`lost answer: ${lost.method} ${lost.path} -> ${lost.status}`);
