// The browser half of `cargo bench --bench app_load` (benches/app_load.rs starts the server with
// the demo, today's plan for rep1 and an enrolment link). Chromium (Debian's, through
// playwright-core) loads the reps' app as a phone and the managers' map as a desktop, each through
// a TCP proxy that makes every connection a "Slow 3G" one as DevTools defines it: 2,000 ms round
// trip, 50,000 bytes/s down and up, the bandwidth shared by all connections. The proxy slows the
// service worker's own fetches too (DevTools' throttling of a page does not). Measured:
// - the app's own JS+CSS and the managers' map's, gzipped (level 9) and as sent (brotli), with
//   MapLibre GL JS apart;
// - the time from navigation start until the day's first stop is on screen: cold (an enrolled
//   phone with an empty cache and no service worker) and from the service worker's cache;
// - the managers' map, cold: until the page is usable (sign-in or sidebar drawn) and until the
//   day's layers are loaded.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import net from 'node:net';

const env = process.env;
const require = createRequire(join(env.FV_DIST, '..', 'package.json'));
const { chromium } = require('playwright-core');
const RUNS = Number(env.FV_RUNS || 3);
const SLOW_3G = { rttMs: 2000, bytesPerS: 50000 };

/** A TCP proxy to `target` (host:port) that delays and paces every byte like `profile`. */
function slowProxy(target, profile) {
  const [host, port] = [new URL(target).hostname, Number(new URL(target).port)];
  // One pacer per direction, shared by all connections: the phone has one radio link.
  const pacer = () => ({ free: 0 });
  const down = pacer();
  const up = pacer();
  const pipe = (from, to, link) => {
    from.on('data', (chunk) => {
      const now = performance.now();
      const start = Math.max(now, link.free);
      link.free = start + (chunk.length / profile.bytesPerS) * 1000;
      const at = link.free + profile.rttMs / 2;
      setTimeout(() => { if (!to.destroyed) to.write(chunk); }, at - now);
    });
    from.on('end', () => setTimeout(() => to.end(), Math.max(0, link.free - performance.now()) + profile.rttMs / 2));
    from.on('error', () => to.destroy());
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host);
    pipe(client, upstream, up);
    pipe(upstream, client, down);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => server.close(),
  })));
}

/** Gzip-9 and brotli sizes of the built JS and CSS under `dir` (not recursive), MapLibre apart. */
function sizes(dir) {
  const out = { own: { raw: 0, gzip: 0, br: 0, files: [] }, maplibre: { raw: 0, gzip: 0, br: 0, files: [] } };
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (!/\.(js|css)$/.test(name) || !statSync(path).isFile()) continue;
    const data = readFileSync(path);
    const isMapLibre = /^maplibre/.test(name) || (data.length > 200000 && /maplibre/i.test(data.toString('latin1')));
    const part = isMapLibre ? out.maplibre : out.own;
    part.raw += data.length;
    part.gzip += gzipSync(data, { level: 9 }).length;
    try { part.br += statSync(`${path}.br`).size; } catch { part.br = NaN; }
    part.files.push(name);
  }
  return out;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2, locale: 'en-GB',
  geolocation: { latitude: 39.99, longitude: 116.31, accuracy: 10 }, permissions: ['geolocation'] };
// Records when the first planned stop is drawn, in ms since navigation start.
const markList = () => {
  new MutationObserver((_, obs) => {
    if (document.querySelector('li.stop')) { window.__listAt = performance.now(); obs.disconnect(); }
  }).observe(document, { childList: true, subtree: true });
};

const browser = await chromium.launch({ executablePath: env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
const proxy = await slowProxy(env.FV_BASE_URL, SLOW_3G);
const enrolUrl = env.FV_ENROL_URL.replace(env.FV_BASE_URL, proxy.url);

// Enrol once at full speed... through the proxy's origin, which the measured loads use.
const home = await browser.newContext(phone);
const enrolPage = await home.newPage();
await enrolPage.goto(enrolUrl, { timeout: 120000 });
await enrolPage.waitForSelector('li.stop', { timeout: 120000 });
await enrolPage.waitForFunction(() => navigator.serviceWorker?.controller != null, null, { timeout: 120000 });
const enrolled = await home.storageState();
await enrolPage.close();

const cold = [];
for (let i = 0; i < RUNS; i++) {
  const context = await browser.newContext({ ...phone, storageState: enrolled, serviceWorkers: 'block' });
  await context.addInitScript(markList);
  const page = await context.newPage();
  await page.goto(`${proxy.url}/app/`, { waitUntil: 'commit', timeout: 120000 });
  await page.waitForFunction(() => window.__listAt != null, null, { timeout: 120000 });
  cold.push(await page.evaluate(() => window.__listAt));
  await context.close();
}

const cached = [];
await home.addInitScript(markList);
for (let i = 0; i < RUNS; i++) {
  const page = await home.newPage();
  await page.goto(`${proxy.url}/app/`, { waitUntil: 'commit', timeout: 120000 });
  await page.waitForFunction(() => window.__listAt != null, null, { timeout: 120000 });
  if (!(await page.evaluate(() => navigator.serviceWorker.controller != null))) throw new Error('the service worker did not serve the page');
  cached.push(await page.evaluate(() => window.__listAt));
  await page.close();
}

const mapUsable = [];
const mapLoaded = [];
for (let i = 0; i < RUNS; i++) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-GB' });
  await context.addInitScript((token) => {
    sessionStorage.setItem('fv.token', token);
    new MutationObserver((_, obs) => {
      if (window.fieldvisit?.loaded) { window.__loadedAt = performance.now(); obs.disconnect(); }
    }).observe(document, { childList: true, subtree: true, attributes: true });
  }, env.FV_MANAGER_TOKEN);
  const page = await context.newPage();
  await page.goto(`${proxy.url}/`, { waitUntil: 'commit', timeout: 300000 });
  await page.waitForSelector('#panel', { state: 'visible', timeout: 300000 });
  mapUsable.push(await page.evaluate(() => performance.now()));
  await page.waitForFunction(() => window.fieldvisit?.loaded === true, null, { timeout: 300000, polling: 50 });
  mapLoaded.push(await page.evaluate(() => window.__loadedAt ?? performance.now()));
  await context.close();
}

await browser.close();
proxy.close();

const app = sizes(join(env.FV_DIST, 'app'));
const map = sizes(env.FV_DIST);
const maplibreJs = readFileSync(require.resolve('maplibre-gl/dist/maplibre-gl.js'));
const maplibreGzip = gzipSync(maplibreJs, { level: 9 }).length;
const kb = (n) => `${(n / 1000).toFixed(1)} kB`;
const s = (ms) => `${(ms / 1000).toFixed(2)} s`;
const all = (part) => ({ raw: part.own.raw + part.maplibre.raw, gzip: part.own.gzip + part.maplibre.gzip, br: part.own.br + part.maplibre.br,
  files: [...part.own.files, ...part.maplibre.files] });
const mapAll = all(map);
console.log(`profile: Slow 3G (${SLOW_3G.rttMs} ms round trip, ${SLOW_3G.bytesPerS} bytes/s each way, shared), ${RUNS} runs each, medians`);
console.log(`reps' app own JS+CSS (${app.own.files.join(', ')}): ${kb(app.own.raw)} raw, ${kb(app.own.gzip)} gzip-9, ${kb(app.own.br)} brotli as sent; its MapLibre chunk (${app.maplibre.files.join(', ') || 'none'}): ${kb(app.maplibre.gzip)} gzip-9`);
console.log(`managers' map JS+CSS (${mapAll.files.join(', ')}, MapLibre bundled in): ${kb(mapAll.raw)} raw, ${kb(mapAll.gzip)} gzip-9, ${kb(mapAll.br)} brotli as sent; MapLibre GL JS alone: ${kb(maplibreGzip)} gzip-9`);
console.log(`reps' app, day's list on screen, cold: ${s(median(cold))} (${cold.map(s).join(', ')})`);
console.log(`reps' app, day's list on screen, from the service worker: ${s(median(cached))} (${cached.map(s).join(', ')})`);
console.log(`managers' map, cold, page usable: ${s(median(mapUsable))} (${mapUsable.map(s).join(', ')})`);
console.log(`managers' map, cold, day's layers loaded: ${s(median(mapLoaded))} (${mapLoaded.map(s).join(', ')})`);
