// End-to-end test of the reps' app (/app/) with playwright-core driving Debian's chromium as a
// phone (390x844, touch, geolocation at the planned outlet) against a real server. Run by
// tests/integration/reps_app.rs, which seeds the world, makes today's plan and the enrolment link,
// and afterwards checks that the server stored the check-in exactly once. By hand:
//   FV_BASE_URL=.. FV_ENROL_URL=.. FV_OUTLET_ID=.. FV_OUTLET_LAT=.. FV_OUTLET_LON=.. FV_REP_NAME=.. node tests/app-e2e.mjs
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import assert from 'node:assert/strict';

const env = process.env;
const base = env.FV_BASE_URL;
const link = env.FV_ENROL_URL;
const outletId = env.FV_OUTLET_ID;
const [lat, lon] = [Number(env.FV_OUTLET_LAT), Number(env.FV_OUTLET_LON)];
const repName = env.FV_REP_NAME;
assert.ok(base && link && outletId && lat && lon && repName, 'FV_BASE_URL, FV_ENROL_URL, FV_OUTLET_ID, FV_OUTLET_LAT, FV_OUTLET_LON and FV_REP_NAME are needed');
const shots = env.FV_SCREENSHOTS || new URL('../../target/map-ui-screenshots/', import.meta.url).pathname;
mkdirSync(shots, { recursive: true });
const origin = new URL(base).origin;

const browser = await chromium.launch({ executablePath: env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
const context = await browser.newContext({
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  geolocation: { latitude: lat, longitude: lon, accuracy: 8 },
  permissions: ['geolocation'],
  locale: 'en-GB',
});
const page = await context.newPage();
const problems = { console: [], offsite: [] };
page.on('console', (m) => { if (m.type() === 'error') problems.console.push(m.text()); });
page.on('pageerror', (e) => problems.console.push(String(e)));
let offline = false;
const whileOffline = [];
page.on('request', (r) => {
  const u = r.url();
  if (!u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:')) problems.offsite.push(u);
  else if (offline && u.startsWith(origin)) whileOffline.push(r);
});

/** The answers to the app's pings (POST /pings). */
const pings = [];
page.on('response', (r) => { if (r.url() === `${origin}/api/v1/pings` && r.request().method() === 'POST') pings.push(r); });

const results = [];
async function check(name, fn) {
  try { await fn(); results.push(`ok   ${name}`); } catch (e) { results.push(`FAIL ${name}: ${e.message}`); process.exitCode = 1; }
}
const stop = page.locator(`li.stop[data-outlet="${outletId}"]`);
const waitingCount = async () => Number(await page.locator('#outbox-count').textContent());

await check('the enrolment link signs the phone in and shows the rep', async () => {
  await page.goto(link);
  await page.waitForFunction(() => window.fieldvisitApp?.ready === true, null, { timeout: 30000 });
  await page.locator('#rep-name').waitFor({ timeout: 10000 });
  assert.equal(await page.locator('#rep-name').textContent(), repName);
  assert.equal(await page.evaluate(() => location.hash), '', 'the one-time code left the address bar');
  assert.ok(await page.evaluate(() => localStorage.getItem('fv.app.token')), 'token kept');
  assert.ok(await page.locator('#enrol').isHidden());
});

await check("today's stop is listed with its state, its distance and a check-in button big enough to touch", async () => {
  await stop.waitFor({ timeout: 10000 });
  assert.equal(await stop.getAttribute('data-state'), 'pending');
  assert.equal(await stop.locator('[data-testid=state]').textContent(), 'pending');
  // The phone's position is the outlet's: the distance shown is 0 m.
  await page.waitForFunction(() => window.fieldvisitApp.fix != null, null, { timeout: 15000 });
  await page.waitForFunction((id) => document.querySelector(`li.stop[data-outlet="${id}"] .meta`)?.textContent.includes('0 m'), outletId, { timeout: 5000 });
  const box = await stop.locator('button.checkin').boundingBox();
  assert.ok(box.height >= 44 && box.width >= 44, JSON.stringify(box));
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scrolling at 390 px');
  const lang = await page.locator('#lang').boundingBox();
  assert.ok(lang.height >= 44, 'the language switch is big enough to touch');
  await page.screenshot({ path: `${shots}/app-today.png` });
});

await check('the service worker controls the page (the shell is cached)', async () => {
  await page.waitForFunction(() => navigator.serviceWorker?.controller != null, null, { timeout: 20000 });
});

await check('offline, a check-in shows the distance estimate, to be confirmed, and waits in the outbox', async () => {
  offline = true;
  await context.setOffline(true);
  await page.waitForFunction(() => navigator.onLine === false);
  await page.waitForFunction(() => document.querySelector('#net')?.classList.contains('off'));
  await stop.locator('button.checkin').tap();
  const result = page.locator('#result[data-outcome=to_confirm]');
  await result.waitFor({ timeout: 20000 });
  const text = await result.textContent();
  assert.ok(text.includes('To be confirmed when online'), text);
  assert.ok(text.includes('0 m'), text);
  await page.waitForFunction(() => Number(document.querySelector('#outbox-count').textContent) >= 1, null, { timeout: 5000 });
  assert.ok(await page.locator('#outbox-items li[data-kind=checkin]').count() === 1);
  assert.equal(await stop.getAttribute('data-state'), 'done');
  await page.screenshot({ path: `${shots}/app-offline-checkin.png` });
});

await check('reloaded offline, the app, the day and the outbox are still there', async () => {
  await page.reload();
  await page.waitForFunction(() => window.fieldvisitApp?.ready === true, null, { timeout: 30000 });
  await stop.waitFor({ timeout: 10000 });
  assert.equal(await page.locator('#rep-name').textContent(), repName);
  assert.equal(await stop.getAttribute('data-state'), 'done');
  assert.ok((await waitingCount()) >= 1);
  assert.equal(await page.locator('#outbox-items li[data-kind=checkin]').count(), 1);
  assert.ok(await page.locator('#saved').isVisible(), 'says the day is shown from the phone');
});

await check('while offline no request from the page reached the server', async () => {
  assert.ok(whileOffline.length > 0, 'the reload asked for the shell');
  const reached = [];
  for (const r of whileOffline) {
    const res = await r.response().catch(() => null);
    if (!res?.fromServiceWorker()) reached.push(`${r.method()} ${r.url()}`);
  }
  assert.deepEqual(reached, []);
});

await check('online again, the outbox drains and the server answers the check-in', async () => {
  offline = false;
  await context.setOffline(false);
  await page.waitForFunction(() => Number(document.querySelector('#outbox-count').textContent) === 0, null, { timeout: 30000 });
  await page.waitForFunction((id) => {
    const v = JSON.parse(localStorage.getItem('fv.app.visits') || '[]').find((x) => x.outlet_id === Number(id));
    return v?.answer != null;
  }, outletId, { timeout: 10000 });
  const answer = await page.evaluate((id) => JSON.parse(localStorage.getItem('fv.app.visits')).find((x) => x.outlet_id === Number(id)).answer, outletId);
  assert.equal(answer.at_outlet, true, JSON.stringify(answer));
  assert.ok(answer.distance_m < 1, JSON.stringify(answer));
  assert.equal(await page.locator('#refused li').count(), 0, 'nothing refused');
  await page.screenshot({ path: `${shots}/app-online.png` });
});

await check('online, a check-out shows the server\'s answer and adds nothing but the check-out', async () => {
  await stop.locator('button.checkout').tap();
  await page.waitForFunction(() => document.querySelector('#result')?.dataset.outcome === 'at_outlet'
    && JSON.parse(localStorage.getItem('fv.app.visits') || '[]').some((v) => v.out && v.answer?.checked_out_at), null, { timeout: 20000 });
  const text = await page.locator('#result').textContent();
  assert.ok(text.includes('Check-out') && text.includes('At the outlet') && text.includes('allowed'), text);
  const waiting = await page.evaluate(() => window.fieldvisitApp.waiting.map((i) => i.kind));
  assert.deepEqual(waiting.filter((k) => k !== 'ping'), [], 'nothing but a position may wait meanwhile');
});

await check('positions are sent while the app is open, as native pings', async () => {
  // The ping of the phone's fix may have gone out already (one per new fix, every 15 s).
  const deadline = Date.now() + 30000;
  while (!pings.length && Date.now() < deadline) await page.waitForTimeout(250);
  const [res] = pings;
  assert.ok(res, 'no ping was sent');
  assert.equal(res.status(), 200, await res.text());
  const [ping] = res.request().postDataJSON();
  assert.match(ping.ping_id, /^ping-/);
  assert.equal(ping.lat, lat);
});

await check("a write the server refuses leaves the outbox and is listed with the server's reason", async () => {
  await page.evaluate(() => window.fieldvisitApp.outbox.add({ kind: 'ping', method: 'POST', path: '/pings', body: [{ fix_time: 'not a time', lat: 39.95, lon: 116.05 }] }));
  const refused = page.locator('#refused li');
  await refused.first().waitFor({ timeout: 15000 });
  const text = await refused.first().textContent();
  assert.ok(text.includes('422'), text);
  assert.equal(await waitingCount(), 0, 'it left the queue');
  await refused.first().locator('button').tap();
  await page.waitForFunction(() => document.querySelectorAll('#refused li').length === 0, null, { timeout: 5000 });
  assert.ok(await page.locator('#refused-box').isHidden());
});

await check('the zh/en switch translates the app', async () => {
  await page.locator('#lang').tap();
  assert.equal(await page.locator('header .brand').textContent(), '我的拜访');
  assert.equal(await stop.locator('[data-testid=state]').textContent(), '已完成');
  await page.locator('#lang').tap();
  assert.equal(await page.locator('header .brand').textContent(), 'My visits');
});

await check('a used link is refused with the reason, and a phone with no token is asked to open its link', async () => {
  const other = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, locale: 'en-GB' });
  const p = await other.newPage();
  await p.goto(link);
  await p.waitForFunction(() => window.fieldvisitApp?.ready === true, null, { timeout: 30000 });
  assert.ok(await p.locator('#enrol').isVisible());
  assert.ok(await p.locator('#today').isHidden());
  assert.match(await p.locator('#enrol-error').textContent(), /did not work: .*enrolment link/);
  assert.match(await p.locator('#enrol-text').textContent(), /Open the enrolment link/);
  assert.match(await p.locator('.note').textContent(), /cannot track in the background/);
  assert.equal(await p.evaluate(() => localStorage.getItem('fv.app.token')), null);
  await other.close();
});

await check('no console errors and no request leaving the server', async () => {
  assert.deepEqual(problems.offsite, []);
  // Chromium logs the refusal provoked above (and only it) as a failed load.
  assert.deepEqual(problems.console.filter((m) => !/status of 422/.test(m)), []);
  assert.ok(problems.console.length <= 1, problems.console.join('\n'));
});

await browser.close();
console.log(results.join('\n'));
