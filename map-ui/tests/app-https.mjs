// The reps' app over HTTPS served by fieldvisit itself (FV_TLS_CERT/FV_TLS_KEY): Debian's chromium
// as a phone trusts the test's self-signed certificate by its key (FV_SPKI, the base64 SHA-256 of
// its SubjectPublicKeyInfo), so the origin is a real secure context — what geolocation, the camera
// and service workers need on a phone. Run by tests/integration/tls.rs. By hand:
//   FV_BASE_URL=https://localhost:PORT FV_ENROL_URL=.. FV_SPKI=.. FV_REP_NAME=.. node tests/app-https.mjs
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';

const env = process.env;
const [base, link, spki, repName] = [env.FV_BASE_URL, env.FV_ENROL_URL, env.FV_SPKI, env.FV_REP_NAME];
assert.ok(base && link && spki && repName, 'FV_BASE_URL, FV_ENROL_URL, FV_SPKI and FV_REP_NAME are needed');
assert.ok(base.startsWith('https://'), 'an https base URL');

const browser = await chromium.launch({
  executablePath: env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', `--ignore-certificate-errors-spki-list=${spki}`],
});
const context = await browser.newContext({
  viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, locale: 'en-GB',
  geolocation: { latitude: 39.9, longitude: 116.4, accuracy: 10 }, permissions: ['geolocation'],
});
// A Content-Security-Policy violation counts as an error.
await context.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`)));
const page = await context.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy|CSP violation/.test(m.text())) errors.push(m.text()); });
const insecure = [];
page.on('request', (r) => { if (!r.url().startsWith('https://') && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) insecure.push(r.url()); });

const results = [];
async function check(name, fn) {
  try { await fn(); results.push(`ok   ${name}`); } catch (e) { results.push(`FAIL ${name}: ${e.message}`); process.exitCode = 1; }
}

await check('the enrolment link opens the app over https and signs the phone in', async () => {
  const res = await page.goto(link);
  assert.equal(res.status(), 200);
  await page.waitForFunction(() => window.fieldvisitApp?.ready === true, null, { timeout: 30000 });
  await page.locator('#rep-name').waitFor({ timeout: 10000 });
  assert.equal(await page.locator('#rep-name').textContent(), repName);
});

await check('the page is a secure context: geolocation works and the service worker controls it', async () => {
  assert.equal(await page.evaluate(() => [location.protocol, window.isSecureContext].join()), 'https:,true');
  await page.waitForFunction(() => window.fieldvisitApp.fix != null, null, { timeout: 15000 });
  await page.waitForFunction(() => navigator.serviceWorker?.controller != null, null, { timeout: 20000 });
});

await check('every request went over https and the page raised no error', async () => {
  assert.deepEqual(insecure, []);
  assert.deepEqual(errors, []);
});

await browser.close();
console.log(results.join('\n'));
