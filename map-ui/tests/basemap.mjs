// The street basemap in the managers' map: the server was started with a PMTiles extract the Rust
// test built (tests/integration/basemap.rs); signed in, the map draws its streets with their
// Chinese names. Run by that test; by hand against a server with FV_BASEMAP_PMTILES set:
//   FV_BASE_URL=http://127.0.0.1:8080 FV_ADMIN_TOKEN=.. node tests/basemap.mjs
// Prints `ok <check>` per check; screenshots go to FV_SCREENSHOTS (basemap.png).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import assert from 'node:assert/strict';

const base = process.env.FV_BASE_URL;
const token = process.env.FV_ADMIN_TOKEN;
assert.ok(base && token, 'FV_BASE_URL and FV_ADMIN_TOKEN are needed');
const shots = process.env.FV_SCREENSHOTS || new URL('../../target/map-ui-screenshots/', import.meta.url).pathname;
mkdirSync(shots, { recursive: true });
const origin = new URL(base).origin;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
await context.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`)));
const page = await context.newPage();
const problems = { console: [], offsite: [] };
const requested = [];
page.on('console', (m) => { if (m.type() === 'error') problems.console.push(m.text()); });
page.on('pageerror', (e) => problems.console.push(String(e)));
page.on('request', (r) => {
  const u = r.url();
  requested.push(u);
  if (!u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:')) problems.offsite.push(u);
});

let failed = false;
async function check(name, fn) {
  try { await fn(); console.log(`ok ${name}`); } catch (e) { failed = true; console.log(`not ok ${name}: ${e.message}`); }
}

await page.goto(base);
await page.fill('#token', token);
await page.click('#signin button[type=submit]');
try {
  await page.waitForFunction(() => window.fieldvisit?.loaded === true, null, { timeout: 60000 });
  await page.waitForFunction(() => window.fieldvisitMap?.loaded(), null, { timeout: 60000 });
} catch (e) {
  console.log(`not ok the map loads: ${e.message}\n${JSON.stringify(problems)}`);
  await page.screenshot({ path: `${shots}/basemap-failed.png` });
  await browser.close();
  process.exit(1);
}

/** The names the road label layer has placed on screen. */
const labels = () => page.evaluate(() => window.fieldvisitMap.queryRenderedFeatures({ layers: ['roads-label'] }).map((f) => f.properties.name));

await check('the map draws the street style over the extract', async () => {
  const style = await page.evaluate(() => {
    const s = window.fieldvisitMap.getStyle();
    return { sources: Object.fromEntries(Object.entries(s.sources).map(([k, v]) => [k, v.type])), layers: s.layers.map((l) => l.id) };
  });
  assert.deepEqual(style.sources.streets, 'vector');
  for (const id of ['earth', 'water', 'buildings', 'roads-major_road', 'roads-label', 'places']) assert.ok(style.layers.includes(id), id);
});

await check('zoomed to Chang\'an Avenue, its label 长安街 is drawn from the extract', async () => {
  await page.evaluate(() => window.fieldvisitMap.jumpTo({ center: [116.405, 39.9095], zoom: 15 }));
  await page.waitForFunction(() => window.fieldvisitMap.queryRenderedFeatures({ layers: ['roads-label'] })
    .some((f) => f.properties.name === '长安街'), null, { timeout: 30000 });
  await page.waitForFunction(() => window.fieldvisitMap.loaded() && !window.fieldvisitMap.isMoving(), null, { timeout: 30000 });
  const names = await labels();
  assert.ok(names.includes('长安街'), names.join(', '));
  const roads = await page.evaluate(() => window.fieldvisitMap.queryRenderedFeatures({ layers: ['roads-major_road'] }).map((f) => f.properties.name));
  assert.ok(roads.includes('王府井大街'), roads.join(', '));
  await page.screenshot({ path: `${shots}/basemap.png` });
});

await check('switched to Chinese, the labels read name:zh (English: name:en), still from the extract', async () => {
  const field = () => page.evaluate(() => JSON.stringify(window.fieldvisitMap.getLayoutProperty('roads-label', 'text-field')));
  const before = await field();
  await page.click('#lang');
  await page.waitForFunction((b) => JSON.stringify(window.fieldvisitMap.getLayoutProperty('roads-label', 'text-field')) !== b, before, { timeout: 10000 });
  const [en, zh] = before.includes('name:zh') ? [await field(), before] : [before, await field()];
  assert.match(zh, /name:zh/);
  assert.match(en, /name:en/);
  await page.waitForFunction(() => window.fieldvisitMap.queryRenderedFeatures({ layers: ['roads-label'] })
    .some((f) => f.properties.name === '王府井大街'), null, { timeout: 30000 });
  await page.screenshot({ path: `${shots}/basemap-zh.png` });
});

await check('the file is read in byte ranges from our server', async () => {
  const tiles = requested.filter((u) => u.startsWith(`${origin}/basemap/streets.pmtiles`));
  assert.ok(tiles.length > 0, 'requests for the extract');
  const ranged = await page.evaluate(async () => (await fetch('/basemap/streets.pmtiles', { headers: { Range: 'bytes=0-126' } })).status);
  assert.equal(ranged, 206);
});

await check('Latin labels use the shipped glyphs; CJK ranges are never fetched', async () => {
  const glyphs = requested.filter((u) => u.includes('/glyphs/'));
  assert.ok(glyphs.some((u) => u.endsWith('/glyphs/dejavu-sans/0-255.pbf')), glyphs.join(', '));
  // CJK Unified Ideographs start at U+4E00 = 19968: drawn with the browser's fonts.
  assert.deepEqual(glyphs.filter((u) => Number(u.match(/\/(\d+)-\d+\.pbf$/)?.[1]) >= 0x3000), []);
});

await check('no console error and no request off the server', async () => {
  assert.deepEqual(problems.console, []);
  assert.deepEqual(problems.offsite, []);
});

await browser.close();
if (failed) process.exit(1);
