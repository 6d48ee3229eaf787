// The managers' workbench, one workflow per file in tests/workbench/: each file exports `name` and a
// default `async (t) => {}` given a fresh browser context of its own (`t.open(token)` signs in), so
// workflows stand alone and can run in any order; the server and the browser are shared. Run by
// tests/integration/workbench.rs; by hand:
//   FV_BASE_URL=http://127.0.0.1:8080 FV_ADMIN_TOKEN=.. FV_MANAGER_D1_TOKEN=.. FV_SUPERVISOR_TOKEN=.. \
//   FV_REP_TOKEN=.. node tests/workbench.mjs [name-filter]
// Prints `ok <workflow>` or `not ok <workflow>: <error>` per workflow; exits 1 when any failed.
import { chromium } from 'playwright-core';
import { mkdirSync, readdirSync } from 'node:fs';
import assert from 'node:assert/strict';

const env = (name) => {
  const v = process.env[name];
  assert.ok(v, `${name} is needed`);
  return v;
};
const base = env('FV_BASE_URL');
const tokens = {
  admin: env('FV_ADMIN_TOKEN'),
  managerD1: env('FV_MANAGER_D1_TOKEN'),
  supervisor: env('FV_SUPERVISOR_TOKEN'),
  rep: env('FV_REP_TOKEN'),
};
const shots = process.env.FV_SCREENSHOTS || new URL('../../target/map-ui-screenshots/', import.meta.url).pathname;
mkdirSync(shots, { recursive: true });
const origin = new URL(base).origin;
const filter = process.argv[2] ?? process.env.FV_WORKFLOW ?? '';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist'],
});

/** What a workflow is given: the API (fetch with a token), and `open` for a signed-in page. */
function harness(contexts) {
  const problems = { console: [], offsite: [] };
  return {
    base,
    tokens,
    shots,
    problems,
    /**
     * A page of a new context signed in with `token`, at `hash` (a view, e.g. `#plans`); `touch`
     * makes it a touch screen (a phone: touch events, no hover).
     */
    async open(token, { hash = '', viewport = { width: 1280, height: 800 }, touch = false } = {}) {
      const context = await browser.newContext({ viewport, acceptDownloads: true, hasTouch: touch, isMobile: touch });
      contexts.push(context);
      const page = await context.newPage();
      // A 4xx answer is the app's to show (a refused form): Chromium logs it, it is no error of the page.
      page.on('console', (m) => {
        if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) problems.console.push(m.text());
      });
      page.on('pageerror', (e) => problems.console.push(String(e)));
      page.on('request', (r) => {
        const u = r.url();
        if (!u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:')) problems.offsite.push(u);
      });
      await page.goto(`${base}/${hash}`);
      await page.fill('#token', token);
      await page.click('#signin button[type=submit]');
      await page.waitForSelector('#views:not([hidden])', { timeout: 60000 });
      return page;
    },
    /** The API as `token`: `{status, body}` (JSON when the answer is JSON). */
    async api(token, method, path, body) {
      const res = await fetch(`${base}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed = text;
      try { parsed = JSON.parse(text); } catch { /* not JSON */ }
      return { status: res.status, body: parsed };
    },
  };
}

const dir = new URL('./workbench/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.mjs') && !f.startsWith('_')).sort();
let failed = 0;
for (const file of files) {
  const mod = await import(new URL(file, dir));
  const name = mod.name ?? file;
  if (filter && !name.includes(filter) && !file.includes(filter)) continue;
  const contexts = [];
  const t = harness(contexts);
  try {
    await mod.default(t);
    assert.deepEqual(t.problems.offsite, [], 'no request leaves the server');
    assert.deepEqual(t.problems.console, [], 'no console errors');
    console.log(`ok ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`not ok ${name}: ${e?.stack ?? e}`);
    // What each page showed when it failed, for the one reading the log.
    let i = 0;
    for (const c of contexts) {
      for (const p of c.pages()) {
        i += 1;
        await p.screenshot({ path: `${shots}/failed-${file.replace(/\.mjs$/, '')}-${i}.png`, fullPage: true }).catch(() => {});
      }
    }
    if (t.problems.console.length) console.log(`console errors: ${t.problems.console.join(' | ')}`);
  } finally {
    for (const c of contexts) await c.close().catch(() => {});
  }
}
await browser.close();
process.exit(failed ? 1 : 0);
