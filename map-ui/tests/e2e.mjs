// End-to-end test of the managers' map with playwright-core driving Debian's chromium against a
// real server loaded with the demo data. Run by tests/integration/map_ui.rs; by hand:
//   FV_BASE_URL=http://127.0.0.1:8080 FV_ADMIN_TOKEN=.. FV_MANAGER_D1_TOKEN=.. node tests/e2e.mjs
// Screenshots go to FV_SCREENSHOTS (default ../target/map-ui-screenshots).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import assert from 'node:assert/strict';

const base = process.env.FV_BASE_URL;
const adminToken = process.env.FV_ADMIN_TOKEN;
const managerToken = process.env.FV_MANAGER_D1_TOKEN;
const deviceToken = process.env.FV_DEVICE_TOKEN;
const repToken = process.env.FV_REP_TOKEN;
const shots = process.env.FV_SCREENSHOTS || new URL('../../target/map-ui-screenshots/', import.meta.url).pathname;
assert.ok(base && adminToken && managerToken && deviceToken && repToken, 'FV_BASE_URL, FV_ADMIN_TOKEN, FV_MANAGER_D1_TOKEN, FV_REP_TOKEN and FV_DEVICE_TOKEN are needed');
mkdirSync(shots, { recursive: true });
const origin = new URL(base).origin;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist'],
});

/** A page signed in with `token`, recording console errors and every request off the server. */
async function open(token, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  // A Content-Security-Policy violation is a console error (Chromium logs most itself; this
  // catches the rest), so the checks below fail on one.
  await context.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`)));
  const page = await context.newPage();
  const problems = { console: [], offsite: [] };
  page.on('console', (m) => { if (m.type() === 'error') problems.console.push(m.text()); });
  page.on('pageerror', (e) => problems.console.push(String(e)));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:')) problems.offsite.push(u);
  });
  await page.goto(base);
  await page.fill('#token', token);
  await page.click('#signin button[type=submit]');
  await page.waitForFunction(() => window.fieldvisit?.loaded === true, null, { timeout: 60000 });
  await page.waitForFunction(() => window.fieldvisitMap?.loaded() && !window.fieldvisitMap.isMoving(), null, { timeout: 60000 });
  await page.waitForTimeout(500);
  return { page, context, problems };
}

const rendered = (page, layer) => page.evaluate((l) => window.fieldvisitMap.queryRenderedFeatures({ layers: [l] }).map((f) => ({ id: f.id, properties: f.properties })), layer);
/** The rendered features of `layer` once it has drawn some (data and tiles load asynchronously;
 * on a loaded machine the first frame may come after the map reports itself idle). */
async function renderedSoon(page, layer) {
  await page
    .waitForFunction((l) => window.fieldvisitMap.queryRenderedFeatures({ layers: [l] }).length > 0, layer, { timeout: 30000 })
    .catch(() => {});
  return rendered(page, layer);
}
const sourceData = (page, source) => page.evaluate((s) => window.fieldvisit.data[s], source);
const results = [];
/** Picks the rep at `index` and waits until that rep's day has loaded. */
async function loadDay(page, index) {
  const before = await page.evaluate(() => window.fieldvisit.dayLoaded?.seq ?? 0);
  await page.selectOption('#rep', { index });
  await page.click('#load-day');
  await page.waitForFunction((b) => (window.fieldvisit.dayLoaded?.seq ?? 0) > b, before, { timeout: 20000 });
}
async function check(name, fn) {
  try { await fn(); results.push(`ok   ${name}`); } catch (e) { results.push(`FAIL ${name}: ${e.message}`); process.exitCode = 1; }
}

// Admin: the whole org.
const admin = await open(adminToken);
await check('the page loads with no console errors and no request leaving the server', async () => {
  assert.deepEqual(admin.problems.console, []);
  assert.deepEqual(admin.problems.offsite, []);
});
await check('outlet, coverage and territory layers are drawn', async () => {
  const outlets = await renderedSoon(admin.page, 'outlets');
  assert.ok(outlets.length > 0, 'outlets rendered');
  for (const o of outlets) assert.ok(['visited', 'due', 'overdue', 'never_visited', 'closed'].includes(o.properties.status), o.properties.status);
  assert.ok((await renderedSoon(admin.page, 'coverage')).length > 0, 'coverage hexagons rendered');
  assert.ok((await renderedSoon(admin.page, 'territories')).length > 0, 'territories rendered');
  const legend = await admin.page.locator('#legend .row[data-status]').count();
  assert.equal(legend, 5);
});
await admin.page.screenshot({ path: `${shots}/overview.png` });
await check('clicking an outlet opens its popup with its figures', async () => {
  const target = await admin.page.evaluate(() => {
    const m = window.fieldvisitMap;
    const f = m.queryRenderedFeatures({ layers: ['outlets'] })[0];
    const p = m.project(f.geometry.coordinates);
    return { id: f.id, x: p.x, y: p.y, props: f.properties };
  });
  const box = await admin.page.locator('#map').boundingBox();
  await admin.page.mouse.click(box.x + target.x, box.y + target.y);
  const popup = admin.page.locator('[data-testid=outlet-popup]');
  await popup.waitFor({ timeout: 10000 });
  const shown = Number(await popup.getAttribute('data-outlet'));
  // The outlet under the click (the topmost one there) is the one the popup shows: compare with the layer.
  const fc = await sourceData(admin.page, 'outlets');
  const f = fc.features.find((x) => x.id === shown);
  assert.ok(f, `outlet ${shown} is in the layer`);
  assert.equal(await popup.locator('[data-field=code]').textContent(), f.properties.code);
  assert.equal(await popup.locator('[data-field=tier]').textContent(), f.properties.tier);
  const required = f.properties.required_visits;
  const req = Number.isInteger(required) ? String(required) : required.toFixed(2);
  assert.equal(await popup.locator('[data-field=visits]').textContent(), `${f.properties.valid_visits} / ${req}`);
  await admin.page.screenshot({ path: `${shots}/outlet-popup.png` });
  await admin.page.keyboard.press('Escape');
  await admin.page.evaluate(() => document.querySelectorAll('.maplibregl-popup').forEach((p) => p.remove()));
});
await check('a fix posted by a phone moves its rep on the live layer without a reload', async () => {
  const centre = await admin.page.evaluate(() => window.fieldvisitMap.getCenter().toArray());
  const [lon, lat] = [Number((centre[0] + 0.0123).toFixed(6)), Number((centre[1] - 0.0071).toFixed(6))];
  const res = await fetch(`${base}/api/v1/pings`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${deviceToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify([{ fix_time: new Date().toISOString(), lat, lon, accuracy_m: 5 }]),
  });
  assert.equal(res.status, 200, await res.text());
  await admin.page.waitForFunction(([lon, lat]) => (window.fieldvisit.data.live?.features ?? [])
    .some((f) => Math.abs(f.geometry.coordinates[0] - lon) < 1e-6 && Math.abs(f.geometry.coordinates[1] - lat) < 1e-6), [lon, lat], { timeout: 20000 });
  await admin.page.waitForTimeout(300);
  const drawn = await rendered(admin.page, 'live');
  assert.ok(drawn.length > 0, 'live positions rendered');
});
await check('the resolution switch redraws the hexagons at the new resolution', async () => {
  const before = (await sourceData(admin.page, 'coverage')).h3_resolution;
  await admin.page.selectOption('#h3-res', '7');
  await admin.page.waitForFunction(() => window.fieldvisit.data.coverage?.h3_resolution === 7, null, { timeout: 20000 });
  assert.equal(before, 8);
  await admin.page.waitForTimeout(500);
  // The hexagons drawn are cells of resolution 7 (the second hex digit of an H3 index).
  const cells = (await rendered(admin.page, 'coverage')).map((f) => f.properties.cell);
  assert.ok(cells.length > 0);
  for (const c of cells) assert.equal(parseInt(c[1], 16), 7, c);
});
const api = (page, path, token, options = {}) => page.evaluate(async ({ path, token, options }) => {
  const r = await fetch(`/api/v1${path}`, { ...options, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } });
  return r.json();
}, { path, token, options });
const pct = (v) => (v == null ? '–' : `${v.toFixed(1)}%`);
await check('the summary panel shows the figures of the territory picked, with a chart and its CSV', async () => {
  // A district, not the city the panel starts with.
  const district = await admin.page.locator('#territory option', { hasText: 'BJ-D2' }).first().getAttribute('value');
  await admin.page.selectOption('#territory', district);
  const id = await admin.page.inputValue('#territory');
  const from = await admin.page.inputValue('#from');
  const to = await admin.page.inputValue('#to');
  await admin.page.waitForFunction((id) => window.fieldvisit.summary?.coverage.territory_id === Number(id), id, { timeout: 20000 });
  const compliance = await api(admin.page, `/territories/${id}/compliance?from=${from}&to=${to}`, adminToken);
  const coverage = await api(admin.page, `/territories/${id}/coverage?from=${from}&to=${to}&h3_res=8`, adminToken);
  const shown = async (k) => admin.page.locator(`#summary dd[data-key=${k}]`).textContent();
  assert.equal(await shown('plan_pct'), pct(compliance.plan.plan_compliance_pct));
  assert.equal(await shown('coverage_pct'), pct(coverage.outlets.coverage_pct));
  assert.equal(await shown('suspect_visits'), String(compliance.plan.suspect_visits));
  assert.equal(await shown('overdue'), String(coverage.status_counts.overdue));
  assert.equal(await admin.page.locator('#summary-scope').textContent(), `${coverage.code} ${coverage.name}`);
  assert.equal(await admin.page.locator('#chart [data-chart=coverage-by-tier] rect').count(), coverage.by_tier.length);
  const statusBars = admin.page.locator('#chart [data-chart=outlets-by-status] rect');
  assert.equal(await statusBars.count(), 5);
  // Bars are drawn to scale: the overdue bar's width over the widest is its count over the largest.
  const widths = await statusBars.evaluateAll((rs) => rs.map((r) => Number(r.getAttribute('width'))));
  const counts = ['visited', 'due', 'overdue', 'never_visited', 'closed'].map((k) => coverage.status_counts[k]);
  const most = Math.max(...counts);
  for (let i = 0; i < 5; i++) if (counts[i] > 0) assert.ok(Math.abs(widths[i] / Math.max(...widths) - counts[i] / most) < 0.02, `${widths} vs ${counts}`);
  const planned = compliance.reps.filter((r) => r.totals.planned > 0).length;
  assert.equal(await admin.page.locator('#chart [data-chart=plan-by-rep] rect').count(), Math.min(10, planned));
  const [download] = await Promise.all([admin.page.waitForEvent('download'), admin.page.click('#csv')]);
  const { readFileSync } = await import('node:fs');
  const csv = readFileSync(await download.path(), 'utf8');
  assert.ok(csv.includes(`"Plan compliance","${pct(compliance.plan.plan_compliance_pct)}"`), csv);
  assert.ok(csv.includes(`"Overdue","${coverage.status_counts.overdue}"`), csv);
});
await check('the replay slider moves the rep marker along the track', async () => {
  const reps = await admin.page.locator('#rep option').count();
  assert.ok(reps > 0, 'reps listed');
  let moved = false;
  for (let i = 0; i < reps && !moved; i++) {
    await loadDay(admin.page, i);
    if (await admin.page.locator('#player').isHidden()) continue;
    const max = Number(await admin.page.getAttribute('#slider', 'max'));
    const frames = await admin.page.evaluate(() => window.fieldvisit.frames);
    const first = await admin.page.evaluate(() => window.fieldvisit.marker);
    await admin.page.locator('#slider').fill(String(Math.floor(max / 2)));
    const middle = await admin.page.evaluate(() => window.fieldvisit.marker);
    await admin.page.locator('#slider').fill(String(max));
    const last = await admin.page.evaluate(() => window.fieldvisit.marker);
    // The marker stands on the day's fixes in time order, which the drawn track joins.
    assert.deepEqual([first, middle, last], [frames[0], frames[Math.floor(max / 2)], frames[max]]);
    const track = await sourceData(admin.page, 'track');
    const coords = track.features.flatMap((f) => (f.geometry.type === 'LineString' ? f.geometry.coordinates : f.geometry.coordinates.flat()));
    assert.ok(coords.some((c) => c[0] === middle[0] && c[1] === middle[1]) || frames.length < 3, 'the marker is on the track');
    moved = first[0] !== last[0] || first[1] !== last[1];
  }
  assert.ok(moved, 'the marker moved');
  assert.ok((await renderedSoon(admin.page, 'track')).length > 0, 'track rendered');
  await admin.page.screenshot({ path: `${shots}/replay.png` });
});
await check("a rep's day lists the planned stops in route order beside the order the rep went round", async () => {
  const reps = await admin.page.locator('#rep option').count();
  let plan = null;
  for (let i = 0; i < reps && !(plan?.visits.length > 1); i++) {
    await loadDay(admin.page, i);
    const rep = await admin.page.inputValue('#rep');
    const day = await admin.page.inputValue('#day');
    plan = await api(admin.page, `/reps/${rep}/plan?date=${day}`, adminToken);
  }
  assert.ok(plan.visits.length > 1, 'a rep-day with a plan');
  const rep = await admin.page.inputValue('#rep');
  const day = await admin.page.inputValue('#day');
  const compliance = (await api(admin.page, `/reps/${rep}/compliance?from=${day}&to=${day}`, adminToken)).days.find((d) => d.day === day);
  const visits = (await api(admin.page, `/reps/${rep}/visits?from=${day}&to=${day}`, adminToken)).visits
    .sort((a, b) => Date.parse(a.arrival) - Date.parse(b.arrival));
  const rows = await admin.page.locator('#plan tbody tr').evaluateAll((trs) => trs.map((tr) => ({
    planned: tr.querySelector('[data-col=planned]').textContent, actual: tr.querySelector('[data-col=actual]').textContent,
    outcome: tr.dataset.outcome, visit: tr.dataset.visit ? Number(tr.dataset.visit) : null })));
  const stops = [...plan.visits].sort((a, b) => a.seq - b.seq);
  // Planned stops first, numbered in route order, each with the outcome the compliance API gives it
  // and the arrival rank of the visit that answered it; then every other visit of the day.
  for (const [i, p] of stops.entries()) {
    const r = compliance.planned_visits.find((x) => x.planned_visit_id === p.planned_visit_id);
    assert.equal(rows[i].planned, String(i + 1));
    assert.equal(rows[i].outcome, r.outcome);
    const rank = r.visit_id == null ? '–' : String(visits.findIndex((v) => v.id === r.visit_id) + 1);
    assert.equal(rows[i].actual, rank, `stop ${i + 1}`);
  }
  const answered = new Set(compliance.planned_visits.map((x) => x.visit_id).filter((x) => x != null));
  assert.deepEqual(rows.slice(stops.length).map((r) => r.visit), visits.filter((v) => !answered.has(v.id)).map((v) => v.id));
  assert.ok(rows.slice(stops.length).every((r) => r.outcome === 'unplanned'));
  await admin.page.waitForTimeout(500);
  assert.equal((await rendered(admin.page, 'plan-stops')).length, stops.length, 'every planned stop is drawn');
  assert.ok((await renderedSoon(admin.page, 'route')).length > 0, 'the planned route is drawn');
  assert.ok((await renderedSoon(admin.page, 'visit-order')).length > 0, 'visits carry their order');
  await admin.page.screenshot({ path: `${shots}/plan-vs-actual.png` });
});
await check("clicking a visit shows its evidence (not its outlet's popup), and a reviewer's rejection is stored with its reason", async () => {
  // A visit drawn over its outlet: the click must open the visit, the topmost feature.
  const reps = await admin.page.locator('#rep option').count();
  let target = null;
  for (let i = 0; i < reps && !target; i++) {
    await loadDay(admin.page, i);
    if ((await sourceData(admin.page, 'day-visits')).features.length === 0) continue;
    await admin.page.waitForFunction(() => window.fieldvisitMap.loaded() && !window.fieldvisitMap.isMoving(), null, { timeout: 20000 });
    await admin.page.waitForTimeout(1500);
    target = await admin.page.evaluate(() => {
      const m = window.fieldvisitMap;
      for (const f of m.queryRenderedFeatures({ layers: ['day-visits'] })) {
        const p = m.project(f.geometry.coordinates);
        if (m.queryRenderedFeatures([p.x, p.y], { layers: ['outlets'] }).length) return { id: f.id, x: p.x, y: p.y };
      }
      return null;
    });
  }
  assert.ok(target, 'a visit drawn over an outlet');
  const box = await admin.page.locator('#map').boundingBox();
  await admin.page.mouse.click(box.x + target.x, box.y + target.y);
  await admin.page.locator('#evidence-panel').waitFor({ state: 'visible', timeout: 10000 });
  await admin.page.waitForTimeout(300);
  assert.equal(await admin.page.locator('[data-testid=outlet-popup]').count(), 0, 'no outlet popup');
  const shownId = await admin.page.evaluate(() => window.fieldvisit.evidenceVisit.id);
  assert.equal(shownId, target.id);
  const rep = await admin.page.inputValue('#rep');
  const day = await admin.page.inputValue('#day');
  const v = (await api(admin.page, `/reps/${rep}/visits?from=${day}&to=${day}`, adminToken)).visits.find((x) => x.id === shownId);
  assert.ok(v, `visit ${shownId} is the rep's`);
  assert.equal(await admin.page.locator('#evidence dd[data-key=ping_count]').textContent(), String(v.ping_count));
  assert.equal(await admin.page.locator('#evidence dd[data-key=min_distance]').textContent(), `${Math.round(v.min_distance_m)} m`);
  assert.ok((await sourceData(admin.page, 'evidence')).features.length > 0, 'the visit fixes are on the map');
  // The visit's photos and checklist answers are read (with the token) into the panel.
  await admin.page.locator('#visit-answers h3').waitFor({ state: 'visible', timeout: 10000 });
  const photos = await api(admin.page, `/visits/${shownId}/photos`, adminToken);
  assert.equal(await admin.page.locator('#visit-photos figure[data-photo]').count(), photos.length);
  if (photos.length === 0) assert.equal(await admin.page.locator('#visit-photos p').textContent(), 'No photos');
  await admin.page.screenshot({ path: `${shots}/evidence.png` });
  await admin.page.click('#reject');
  assert.equal(await admin.page.locator('#review-result').textContent(), 'Give a reason.');
  await admin.page.fill('#review-reason', 'photo shows another shop');
  await admin.page.click('#reject');
  await admin.page.waitForFunction(() => window.fieldvisit.reviewed, null, { timeout: 10000 });
  const reviews = await api(admin.page, `/visits/${shownId}/reviews`, adminToken);
  const list = reviews.items ?? reviews.reviews ?? reviews;
  const last = list[list.length - 1];
  assert.equal(last.decision, 'rejected');
  assert.equal(last.reason, 'photo shows another shop');
});
await check('the zh/en switch changes the labels', async () => {
  assert.equal(await admin.page.locator('h2[data-i18n=layers]').textContent(), 'Layers');
  await admin.page.click('#lang');
  assert.equal(await admin.page.locator('h2[data-i18n=layers]').textContent(), '图层');
  assert.equal(await admin.page.locator('#legend .row[data-status=overdue]').textContent().then((s) => s.trim()), '逾期');
  await admin.page.screenshot({ path: `${shots}/zh.png` });
  await admin.page.click('#lang');
  assert.equal(await admin.page.locator('h2[data-i18n=layers]').textContent(), 'Layers');
});
await check('no console errors and no request off the server after using every view', async () => {
  assert.deepEqual(admin.problems.console, []);
  assert.deepEqual(admin.problems.offsite, []);
});
await admin.context.close();

// A district manager sees only their district.
const manager = await open(managerToken);
await check("a manager's map holds only the outlets and reps of their territories", async () => {
  // The outlets of the manager's subtree, read with the admin token (territory paths and outlets' territories).
  const scope = await manager.page.evaluate(async ({ adminToken, managerToken }) => {
    const get = (path, token) => fetch(`/api/v1${path}`, { headers: { Authorization: `Bearer ${token}` } }).then((r) => r.json());
    const me = await get('/me', managerToken);
    const all = async (path) => {
      const items = [];
      let after = '';
      for (;;) {
        const page = await get(`${path}?limit=1000${after}`, adminToken);
        items.push(...page.items);
        if (page.next == null) return items;
        after = `&after=${page.next}`;
      }
    };
    const territories = new Set((await all('/territories')).filter((t) => t.path.includes(me.user.territory_id)).map((t) => t.id));
    const outlets = await all('/outlets');
    return { ids: outlets.filter((o) => territories.has(o.territory_id)).map((o) => o.id), total: outlets.length };
  }, { adminToken, managerToken });
  assert.ok(scope.ids.length > 0 && scope.ids.length < scope.total, 'the district holds some of the outlets');
  const shown = (await sourceData(manager.page, 'outlets')).features.map((f) => f.id);
  assert.ok(shown.length > 0, 'outlets shown');
  for (const id of shown) assert.ok(scope.ids.includes(id), `outlet ${id} is in the manager's district`);
  const adminReps = await open(adminToken).then(async (a) => { const n = await a.page.locator('#rep option').count(); await a.context.close(); return n; });
  const reps = await manager.page.locator('#rep option').count();
  assert.ok(reps < adminReps, `manager lists ${reps} reps, admin ${adminReps}`);
  assert.deepEqual(manager.problems.console, []);
  assert.deepEqual(manager.problems.offsite, []);
});
await manager.page.screenshot({ path: `${shots}/manager.png` });
await manager.context.close();

// A rep: their own day and figures, no team views.
const rep = await open(repToken);
await check("a rep's map shows only their own day and figures, without team layers or review", async () => {
  const me = await api(rep.page, '/me', repToken);
  assert.equal(me.user.role, 'rep');
  assert.deepEqual(await rep.page.locator('#rep option').evaluateAll((os) => os.map((o) => Number(o.value))), [me.user.id]);
  assert.ok(await rep.page.locator('#territory').isHidden(), 'no territory picker');
  assert.ok(await rep.page.locator('#show-outlets').isHidden(), 'no outlet layer switch');
  assert.equal((await rendered(rep.page, 'outlets')).length, 0);
  assert.equal((await rendered(rep.page, 'coverage')).length, 0);
  const from = await rep.page.inputValue('#from');
  const to = await rep.page.inputValue('#to');
  const own = await api(rep.page, `/reps/${me.user.id}/compliance?from=${from}&to=${to}`, repToken);
  assert.equal(await rep.page.locator('#summary dd[data-key=plan_pct]').textContent(), pct(own.totals.plan_compliance_pct));
  assert.equal(await rep.page.locator('#summary dd[data-key=missed]').textContent(), String(own.totals.missed));
  assert.equal(await rep.page.locator('#summary-scope').textContent(), me.user.name);
  // Their day loads by itself; a visit's evidence opens from the plan table, without review buttons.
  await rep.page.waitForFunction(() => window.fieldvisit.dayLoaded, null, { timeout: 20000 });
  const row = rep.page.locator('#plan tr[data-visit]').first();
  assert.ok(await row.count() > 0, 'the rep had visits that day');
  // The rep's phone posts a photo (a real JPEG drawn by the browser) and checklist answers for
  // the visit; the panel shows the thumbnail, what the photo proves and the answer found wrong.
  const visitId = Number(await row.getAttribute('data-visit'));
  const checklist = await api(rep.page, '/checklists', adminToken, { method: 'POST', body: JSON.stringify({ name: 'Map audit', items: [
    { key: 'display_ok', label: 'Display check', type: 'yes_no', required: true, expect: true },
    { key: 'sim_stock', label: 'SIM stock count', type: 'number', integer: true, min: 0, expect_min: 10 }] }) });
  assert.ok(checklist.id, JSON.stringify(checklist));
  const uploaded = await rep.page.evaluate(async ({ visitId, token }) => {
    const canvas = document.createElement('canvas');
    [canvas.width, canvas.height] = [640, 480];
    const g = canvas.getContext('2d');
    g.fillStyle = '#c33'; g.fillRect(0, 0, 640, 480);
    g.fillStyle = '#fff'; g.fillRect(120, 90, 400, 300);
    const blob = await new Promise((ok) => canvas.toBlob(ok, 'image/jpeg', 0.9));
    const form = new FormData();
    form.append('photo', blob, 'storefront.jpg');
    const r = await fetch(`/api/v1/visits/${visitId}/photos`, { method: 'POST', body: form, headers: { Authorization: `Bearer ${token}` } });
    return { status: r.status, body: await r.json() };
  }, { visitId, token: repToken });
  assert.equal(uploaded.status, 201, JSON.stringify(uploaded.body));
  const answered = await api(rep.page, `/visits/${visitId}/outcomes`, repToken, { method: 'POST', body: JSON.stringify({ checklist_id: checklist.id, answers: { display_ok: true, sim_stock: 3 } }) });
  assert.deepEqual(answered.problems, ['sim_stock'], JSON.stringify(answered));
  await rep.page.locator(`#plan tr[data-visit="${visitId}"]`).click();
  await rep.page.locator('#evidence-panel').waitFor({ state: 'visible', timeout: 10000 });
  assert.ok(await rep.page.locator('#review').isHidden(), 'no review buttons for a rep');
  const thumb = rep.page.locator(`#visit-photos figure[data-photo="${uploaded.body.id}"] img`);
  await thumb.waitFor({ state: 'visible', timeout: 10000 });
  await rep.page.waitForFunction((id) => document.querySelector(`#visit-photos figure[data-photo="${id}"] img`)?.complete, uploaded.body.id, { timeout: 10000 });
  assert.deepEqual(await thumb.evaluate((img) => [img.naturalWidth, img.naturalHeight]), [320, 240], 'the thumbnail decoded in the browser');
  assert.equal(await rep.page.locator(`#visit-photos figure[data-photo="${uploaded.body.id}"]`).getAttribute('data-verdict'), 'unverifiable');
  assert.match(await rep.page.locator('#visit-photos figcaption').first().textContent(), /no EXIF to judge by/);
  assert.equal(await rep.page.locator('#visit-answers li.problem').count(), 1);
  assert.equal(await rep.page.locator('#visit-answers li.problem').getAttribute('data-key'), 'sim_stock');
  assert.equal(await rep.page.locator('#visit-answers li[data-key=display_ok]').textContent(), 'display_ok: true');
  await rep.page.locator('#evidence-panel').screenshot({ path: `${shots}/rep-evidence.png` });
  assert.deepEqual(rep.problems.console, []);
  assert.deepEqual(rep.problems.offsite, []);
  await rep.page.screenshot({ path: `${shots}/rep.png` });
});
await rep.context.close();
await check("a phone's token is refused with a reason instead of an empty map", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(base);
  await page.fill('#token', deviceToken);
  await page.click('#signin button[type=submit]');
  await page.waitForFunction(() => document.getElementById('signin-error').textContent.length > 0, null, { timeout: 10000 });
  assert.equal(await page.locator('#signin-error').textContent(), "This is a phone's token; sign in with your own.");
  assert.ok(await page.locator('#app').isHidden());
  await context.close();
});

// A phone.
const phone = await open(adminToken, { width: 390, height: 844 });
await check('a 390 px viewport is usable', async () => {
  const width = await phone.page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no horizontal scroll (${width} px)`);
  const map = await phone.page.locator('#map').boundingBox();
  assert.ok(map.width >= 380 && map.height >= 300, `map ${map.width}x${map.height}`);
  await phone.page.locator('#lang').click();
  assert.equal(await phone.page.locator('h2[data-i18n=period]').textContent(), '时段');
  assert.ok((await renderedSoon(phone.page, 'outlets')).length > 0);
  assert.deepEqual(phone.problems.console, []);
  assert.deepEqual(phone.problems.offsite, []);
});
await phone.page.screenshot({ path: `${shots}/phone.png`, fullPage: true });
await phone.context.close();
await browser.close();
console.log(results.join('\n'));
