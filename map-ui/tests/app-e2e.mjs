// End-to-end test of the reps' app (/app/) with playwright-core driving Debian's chromium as a
// phone (390x844, touch, geolocation at the planned outlet) against a real server. Run by
// tests/integration/reps_app.rs, which seeds the world, makes today's plan and the enrolment link,
// and afterwards checks that the server stored the check-in exactly once. The seeded world also has
// a checklist, an outlet never visited near the rep (O3), a verified visit at the planned outlet
// (FV_VISIT_ID; FV_VISIT_IN_MONTH=0 when it fell in last month, so that the record does not show it)
// and a read of the rep's track by the admin. By hand:
//   FV_BASE_URL=.. FV_ENROL_URL=.. FV_OUTLET_ID=.. FV_OUTLET_LAT=.. FV_OUTLET_LON=.. FV_REP_NAME=.. FV_VISIT_ID=.. node tests/app-e2e.mjs
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import assert from 'node:assert/strict';

const env = process.env;
const base = env.FV_BASE_URL;
const link = env.FV_ENROL_URL;
const outletId = env.FV_OUTLET_ID;
const [lat, lon] = [Number(env.FV_OUTLET_LAT), Number(env.FV_OUTLET_LON)];
const repName = env.FV_REP_NAME;
const visitId = env.FV_VISIT_ID;
const visitInMonth = env.FV_VISIT_IN_MONTH !== '0';
assert.ok(base && link && outletId && lat && lon && repName && visitId, 'FV_BASE_URL, FV_ENROL_URL, FV_OUTLET_ID, FV_OUTLET_LAT, FV_OUTLET_LON, FV_REP_NAME and FV_VISIT_ID are needed');
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
// A Content-Security-Policy violation is a console error, so the last check fails on one.
await context.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`)));
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

/** The scripts the page loaded, and the app's writes about check-ins in the order they were sent. */
const scripts = [];
const checkinWrites = [];
page.on('request', (r) => {
  const u = new URL(r.url());
  if (r.resourceType() === 'script') scripts.push(u.pathname);
  if (r.method() === 'PUT' && u.pathname.startsWith('/api/v1/checkins/')) {
    const kind = /\/photos\//.test(u.pathname) ? 'photo' : /\/answers\//.test(u.pathname) ? 'answers' : 'checkin';
    checkinWrites.push({ kind, request: r });
  }
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

await check('the map shows after the list, in a chunk of its own, with the planned stop and the rep\'s own position', async () => {
  await page.waitForFunction(() => window.fieldvisitApp.map?.loaded === true && window.fieldvisitApp.map.me === true, null, { timeout: 30000 });
  const t = await page.evaluate(() => ({ list: window.fieldvisitApp.listShownAt, map: window.fieldvisitApp.mapShownAt, stops: window.fieldvisitApp.map.stops }));
  assert.ok(t.list < t.map, JSON.stringify(t));
  assert.equal(t.stops, 1);
  assert.equal(await page.locator('#map canvas.maplibregl-canvas').count(), 1);
  const entry = scripts.indexOf('/app/app.js');
  const chunks = scripts.filter((u) => /^\/app\/chunk-[A-Z0-9]+\.js$/.test(u));
  assert.ok(entry >= 0 && chunks.length >= 1, scripts.join(' '));
  assert.ok(scripts.indexOf(chunks.at(-1)) > entry, 'the map chunk comes after the entry');
  const box = await page.locator('#map').boundingBox();
  assert.ok(box.width <= 390 && box.height >= 200, JSON.stringify(box));
});

await check("the next stop is shown with its distance and a geo: link that opens the phone's maps app there", async () => {
  await page.waitForFunction((id) => document.querySelector('#next')?.dataset.outlet === id, outletId, { timeout: 5000 });
  const name = await stop.locator('.name').textContent();
  const text = await page.locator('#next').textContent();
  assert.ok(text.includes('Next stop') && text.includes(name) && text.includes('0 m'), text);
  const href = await page.locator('#next a.maps').getAttribute('href');
  assert.equal(href, `geo:${lat},${lon}?q=${lat},${lon}(${encodeURIComponent(name)})`);
  assert.equal(await stop.locator('a.maps').getAttribute('href'), href);
  const box = await page.locator('#next a.maps').boundingBox();
  assert.ok(box.height >= 44, JSON.stringify(box));
});

await check("the rep's reminders list the outlets that need a visit, with their reasons", async () => {
  await page.waitForFunction(() => window.fieldvisitApp.reminders != null, null, { timeout: 15000 });
  const o3 = page.locator('#reminders li[data-testid=reminder]', { hasText: 'O3' });
  await o3.waitFor({ timeout: 5000 });
  assert.equal(await o3.locator('[data-reason=never_visited]').count(), 1);
  assert.match(await o3.textContent(), /never visited/);
  assert.match(await o3.locator('a.maps').getAttribute('href'), /^geo:/);
});

await check('the outlets near the rep are listed, and one not planned can be checked in at too', async () => {
  await page.waitForFunction(() => (window.fieldvisitApp.nearby?.items?.length ?? 0) >= 2, null, { timeout: 15000 });
  const o3 = page.locator('#nearby li[data-testid=nearby-outlet]', { hasText: 'O3' });
  assert.match(await o3.textContent(), /not planned/);
  const button = o3.locator('button.checkin');
  const box = await button.boundingBox();
  assert.ok(box.height >= 44 && box.width >= 44, JSON.stringify(box));
  const planned = page.locator(`#nearby li[data-outlet="${outletId}"]`);
  assert.match(await planned.textContent(), /planned/);
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scrolling at 390 px');
  await page.screenshot({ path: `${shots}/app-today-map.png`, fullPage: true });
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

/** A small JPEG, drawn by the browser. */
async function jpeg() {
  const url = await page.evaluate(() => {
    const c = document.createElement('canvas');
    c.width = 64; c.height = 48;
    const g = c.getContext('2d');
    g.fillStyle = '#c33'; g.fillRect(0, 0, 64, 48); g.fillStyle = '#fff'; g.fillRect(8, 8, 24, 16);
    return c.toDataURL('image/jpeg', 0.8);
  });
  return Buffer.from(url.split(',')[1], 'base64');
}
const outboxItems = () => page.evaluate(async () => (await window.fieldvisitApp.outbox.waiting()).map((i) => ({
  kind: i.kind, seq: i.seq, path: i.path, body: i.body, form: i.form, client_id: i.client_id,
  blob: i.file instanceof Blob, size: i.file?.size, type: i.file?.type,
})));
let photoSize = 0;

await check("offline, the open check-in's camera photo waits in the outbox behind its check-in, with the app's own fix", async () => {
  await page.locator('#evidence').waitFor({ state: 'visible', timeout: 5000 });
  const input = page.locator('#photo-input');
  assert.equal(await input.getAttribute('accept'), 'image/*');
  assert.equal(await input.getAttribute('capture'), 'environment');
  const picture = await jpeg();
  photoSize = picture.length;
  await input.setInputFiles({ name: 'shelf.jpg', mimeType: 'image/jpeg', buffer: picture });
  await page.waitForFunction(() => window.fieldvisitApp.waiting.some((i) => i.kind === 'photo'), null, { timeout: 5000 });
  const items = await outboxItems();
  const checkin = items.find((i) => i.kind === 'checkin');
  const photo = items.find((i) => i.kind === 'photo');
  assert.ok(photo.seq > checkin.seq, 'sent after its check-in');
  assert.match(photo.path, new RegExp(`^/checkins/${checkin.client_id}/photos/photo-[0-9a-f-]+$`));
  assert.ok(photo.blob, 'the picture is kept as a Blob');
  assert.equal(photo.size, picture.length);
  assert.equal(photo.type, 'image/jpeg');
  assert.equal(Number(photo.form.lat), lat);
  assert.equal(Number(photo.form.lon), lon);
  assert.ok(Number(photo.form.accuracy_m) > 0);
  assert.ok(Math.abs(Date.parse(photo.form.captured_at) - Date.now()) < 60000, photo.form.captured_at);
  assert.equal(await page.locator('#outbox-items li[data-kind=photo]').count(), 1);
  const box = await page.locator('.photo-button').boundingBox();
  assert.ok(box.height >= 44, JSON.stringify(box));
});

await check('the checklist form checks the answers in the app: nothing wrong is queued, right answers wait behind the check-in', async () => {
  const form = page.locator('#checklist');
  await form.locator('[name=sim_stock]').fill('12.5');
  await form.locator('[name=remarks]').fill('far too long for this field');
  await form.locator('[data-testid=save-answers]').tap();
  await page.waitForFunction(() => window.fieldvisitApp.formErrors.length > 0, null, { timeout: 5000 });
  assert.equal(await form.locator('[data-error-for=display_ok]').textContent(), 'Please answer this question.');
  assert.equal(await form.locator('[data-error-for=sim_stock]').textContent(), 'Enter a whole number.');
  assert.equal(await form.locator('[data-error-for=remarks]').textContent(), 'At most 20 characters.');
  assert.equal((await outboxItems()).filter((i) => i.kind === 'answers').length, 0, 'nothing wrong is queued');
  await form.locator('input[name=display_ok][value=true]').check();
  await form.locator('[name=sim_stock]').fill('600');
  await form.locator('[data-testid=save-answers]').tap();
  await page.waitForFunction(() => document.querySelector('[data-error-for=sim_stock]')?.textContent === 'Enter a number from 0 to 500.', null, { timeout: 5000 });
  await form.locator('[name=sim_stock]').fill('12');
  await form.locator('[name=remarks]').fill('all good');
  await form.locator('input[name=competitor][value=none]').check();
  await form.locator('[data-testid=save-answers]').tap();
  await page.waitForFunction(() => window.fieldvisitApp.waiting.some((i) => i.kind === 'answers'), null, { timeout: 5000 });
  const items = await outboxItems();
  const checkin = items.find((i) => i.kind === 'checkin');
  const answers = items.find((i) => i.kind === 'answers');
  assert.ok(answers.seq > checkin.seq);
  assert.match(answers.path, new RegExp(`^/checkins/${checkin.client_id}/answers/answers-[0-9a-f-]+$`));
  assert.equal(typeof answers.body.checklist_id, 'number');
  assert.deepEqual(answers.body.answers, { display_ok: true, sim_stock: 12, competitor: 'none', remarks: 'all good' });
  assert.equal(await form.locator('[data-error-for=sim_stock]').textContent(), '');
  const choice = await form.locator('label.choice').first().boundingBox();
  assert.ok(choice.height >= 44, JSON.stringify(choice));
  await page.screenshot({ path: `${shots}/app-evidence.png`, fullPage: true });
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

await check('reloaded offline, the photo (its picture) and the answers still wait, and the evidence panel is back', async () => {
  const items = await outboxItems();
  const photo = items.find((i) => i.kind === 'photo');
  assert.ok(photo?.blob && photo.size === photoSize, JSON.stringify(photo));
  assert.equal(items.filter((i) => i.kind === 'answers').length, 1);
  assert.ok(await page.locator('#evidence').isVisible());
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
  // (The photo and the answers are the next check's.)
  assert.equal(await page.locator('#refused > li:not([data-kind=photo]):not([data-kind=answers])').count(), 0, 'nothing refused');
  await page.screenshot({ path: `${shots}/app-online.png` });
});

await check('online, the photo and the answers follow their check-in to the server (201) and are marked sent', async () => {
  await page.waitForFunction(() => !window.fieldvisitApp.waiting.some((i) => i.kind === 'photo' || i.kind === 'answers'), null, { timeout: 30000 });
  const order = checkinWrites.map((w) => w.kind);
  const [ci, ph, an] = ['checkin', 'photo', 'answers'].map((k) => order.indexOf(k));
  assert.ok(ci >= 0 && ci < ph && ph < an, order.join(' '));
  const statuses = {};
  for (const w of checkinWrites.filter((x) => x.kind !== 'checkin')) statuses[w.kind] = (await w.request.response())?.status();
  assert.deepEqual(statuses, { photo: 201, answers: 201 });
  const photoPart = checkinWrites.find((w) => w.kind === 'photo').request;
  assert.match(photoPart.headers()['content-type'], /^multipart\/form-data; boundary=/);
  const v = await page.evaluate((id) => JSON.parse(localStorage.getItem('fv.app.visits')).find((x) => x.outlet_id === Number(id)), outletId);
  assert.equal(v.photos[0].status, 'sent', JSON.stringify(v));
  assert.equal(v.answers[0].status, 'sent', JSON.stringify(v));
});

await check('online, a check-out shows the server\'s answer and adds nothing but the check-out', async () => {
  await stop.locator('button.checkout').tap();
  await page.waitForFunction(() => document.querySelector('#result')?.dataset.outcome === 'at_outlet'
    && JSON.parse(localStorage.getItem('fv.app.visits') || '[]').some((v) => v.out && v.answer?.checked_out_at), null, { timeout: 20000 });
  const text = await page.locator('#result').textContent();
  assert.ok(text.includes('Check-out') && text.includes('At the outlet') && text.includes('allowed'), text);
  // The outbox's list on the page is refreshed from IndexedDB just after the answer is recorded.
  await page.waitForFunction(() => window.fieldvisitApp.waiting.every((i) => i.kind === 'ping'), null, { timeout: 5000 })
    .catch(() => {});
  const waiting = await page.evaluate(() => window.fieldvisitApp.waiting.map((i) => i.kind));
  assert.deepEqual(waiting.filter((k) => k !== 'ping'), [], 'nothing but a position may wait meanwhile');
});

await check('positions are sent while the app is open, as native pings', async () => {
  // The ping of the phone's fix may have gone out already (one per new fix, every 15 s).
  const deadline = Date.now() + 30000;
  while (!pings.length && Date.now() < deadline) await page.waitForTimeout(250);
  assert.ok(pings.length, 'no ping was sent');
  const res = pings.find((r) => r.status() === 200);
  assert.ok(res, `no ping was stored: ${pings.map((r) => r.status())}`);
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

const visitCard = page.locator(`li[data-visit="${visitId}"]`);

await check('my record shows the visit with its verdict in words, the check-ins of the day, plan compliance and who looked at my track', async () => {
  await page.locator('#tab-record').tap();
  assert.ok(await page.locator('#record').isVisible() && await page.locator('#today').isHidden());
  await page.waitForFunction(() => window.fieldvisitApp.record?.visits != null, null, { timeout: 15000 });
  if (visitInMonth) {
    await visitCard.waitFor({ timeout: 5000 });
    assert.equal(await visitCard.getAttribute('data-verdict'), 'verified');
    assert.match(await visitCard.locator('[data-testid=reason]').textContent(), /^verified: \d+ fixes over \d+ min, nearest \d+ m, accuracy \d+ m(, a photo confirms it)?$/);
  }
  const access = page.locator('#access li[data-testid=access-entry]', { hasText: 'admin' });
  assert.ok(await access.count() >= 1, 'the admin read the track');
  assert.match(await access.first().textContent(), /track/);
  const checkins = page.locator(`#record-checkins li[data-testid=record-checkin]`);
  assert.ok(await checkins.count() >= 1);
  assert.ok(['confirmed', 'pending', 'unconfirmed'].includes(await checkins.first().getAttribute('data-status')));
  assert.equal(await page.locator('#compliance dd[data-key=planned]').first().textContent(), '1');
  const tab = await page.locator('#tab-record').boundingBox();
  assert.ok(tab.height >= 44, JSON.stringify(tab));
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scrolling at 390 px');
  await page.screenshot({ path: `${shots}/app-record.png`, fullPage: true });
});

await check('a dispute needs a reason, then posts a review of the visit', async () => {
  if (!visitInMonth) return; // the visit is last month's: not in this month's record
  await visitCard.locator('[data-action=dispute]').tap();
  const send = visitCard.locator('[data-action=send-dispute]');
  const box = await send.boundingBox();
  assert.ok(box.height >= 44, JSON.stringify(box));
  await send.tap();
  assert.equal(await visitCard.locator('.form-status').textContent(), 'Please give a reason.');
  await visitCard.locator('textarea').fill('I was in the shop the whole time');
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${origin}/api/v1/visits/${visitId}/reviews` && r.request().method() === 'POST', { timeout: 10000 }),
    send.tap(),
  ]);
  assert.equal(res.status(), 201, await res.text());
  assert.equal((await res.json()).decision, 'disputed');
  await visitCard.locator('[data-testid=disputed]').waitFor({ timeout: 5000 });
  assert.match(await visitCard.locator('[data-testid=disputed]').textContent(), /Disputed: I was in the shop/);
});

await check('reloaded offline, the reminders, outlets nearby, checklist, map and my record are still shown, and no request reaches the server', async () => {
  whileOffline.length = 0;
  offline = true;
  await context.setOffline(true);
  await page.reload();
  await page.waitForFunction(() => window.fieldvisitApp?.ready === true, null, { timeout: 30000 });
  await page.locator('#reminders li[data-testid=reminder]', { hasText: 'O3' }).waitFor({ timeout: 10000 });
  assert.ok(await page.locator('#nearby li[data-testid=nearby-outlet]').count() >= 2);
  await page.waitForFunction(() => window.fieldvisitApp.checklists.length === 1, null, { timeout: 5000 });
  await page.waitForFunction(() => window.fieldvisitApp.map?.loaded === true, null, { timeout: 30000 });
  await page.locator('#tab-record').tap();
  assert.ok(await page.locator('#record-saved').isVisible(), 'says the record is shown from the phone');
  if (visitInMonth) {
    assert.match(await visitCard.locator('[data-testid=reason]').textContent(), /^verified: /);
    assert.ok(await visitCard.locator('[data-testid=disputed]').isVisible());
  }
  assert.ok(await page.locator('#access li[data-testid=access-entry]').count() >= 1);
  const reached = [];
  for (const r of whileOffline) {
    const res = await r.response().catch(() => null);
    if (!res?.fromServiceWorker()) reached.push(`${r.method()} ${r.url()}`);
  }
  assert.deepEqual(reached, []);
  await page.locator('#tab-today').tap();
  offline = false;
  await context.setOffline(false);
  await page.waitForFunction(() => navigator.onLine === true);
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
