// A district manager, on a phone-sized screen, starts an audit export of their team in the reports
// view, watches it queue and run to the end, downloads the PDF summary, and verifies the downloaded
// file in the view: it matches the export byte for byte and the data has not changed. A file that
// was altered after the download does not match.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

export const name = 'export: start, follow, download and verify an audit export';

export default async function (t) {
  const me = (await t.api(t.tokens.managerD1, 'GET', '/me')).body.user;
  const page = await t.open(t.tokens.managerD1, { hash: '#reports', viewport: { width: 390, height: 844 } });
  await page.waitForSelector('[data-testid=export-form] button[type=submit]');
  // The team is preselected: the manager's own territory.
  assert.equal(await page.inputValue('#export-form [name=territory]'), String(me.territory_id));
  // A last day before the first is refused in the form, before anything is sent.
  const from = await page.inputValue('#export-form [name=from]');
  const to = await page.inputValue('#export-form [name=to]');
  await page.fill('#export-form [name=to]', '2000-01-01');
  await page.click('#export-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#export-form [data-error-for=to]').textContent.length > 0);
  assert.equal(await page.$('[data-testid=export-job]'), null, 'no export was started');
  await page.fill('#export-form [name=to]', to);
  await page.uncheck('#export-form [name=formats][value=geojson]');

  // Every status the job panel shows, as it is drawn.
  await page.evaluate(() => {
    globalThis.seenStatuses = [];
    const note = () => {
      const job = document.querySelector('[data-testid=export-job]');
      if (job && job.querySelector('[data-testid=export-progress]')) globalThis.seenStatuses.push(job.dataset.status);
    };
    new MutationObserver(note).observe(document.querySelector('#export-job'), { childList: true, subtree: true });
  });
  await page.click('#export-form button[type=submit]');
  await page.waitForSelector('[data-testid=export-job][data-status=done]', { timeout: 180000 });
  const seen = await page.evaluate(() => globalThis.seenStatuses);
  assert.ok(seen.includes('queued') || seen.includes('running'), `the progress was shown before the end: ${seen}`);
  assert.equal(seen.at(-1), 'done');
  assert.equal(await page.getAttribute('[data-testid=export-progress]', 'value'), '100');

  const id = Number(await page.getAttribute('[data-testid=export-job]', 'data-export'));
  const job = (await t.api(t.tokens.managerD1, 'GET', `/exports/${id}`)).body;
  assert.equal(job.status, 'done');
  assert.deepEqual(job.params.scope, { kind: 'territory', id: me.territory_id });
  assert.deepEqual([job.params.from, job.params.to], [from, to]);
  assert.deepEqual(job.params.formats.sort(), ['csv', 'pdf', 'xlsx']);
  const shown = await page.$$eval('[data-download]', (bs) => bs.map((b) => b.dataset.download));
  assert.deepEqual(shown.sort(), job.manifest.files.map((f) => f.name).sort(), 'a download per file');

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-download="audit-summary.pdf"]')]);
  assert.equal(download.suggestedFilename(), 'audit-summary.pdf');
  const path = await download.path();
  const bytes = readFileSync(path);
  const expected = job.manifest.files.find((f) => f.name === 'audit-summary.pdf');
  assert.equal(createHash('sha256').update(bytes).digest('hex'), expected.sha256, 'the downloaded file is the exported one');

  await page.setInputFiles('#verify-form [name=file]', path);
  await page.click('#verify-form button[type=submit]');
  await page.waitForSelector('[data-testid=verify-result]');
  assert.equal(await page.getAttribute('[data-testid=verify-result]', 'data-matches'), 'true');
  assert.equal(await page.getAttribute('[data-testid=verify-result]', 'data-changed'), 'false');
  await page.screenshot({ path: `${t.shots}/workbench-export.png`, fullPage: true });

  // The same file with one byte changed is not one of the export's files.
  const altered = Buffer.from(bytes);
  altered[altered.length - 2] ^= 1;
  const alteredPath = `${path}-altered.pdf`;
  writeFileSync(alteredPath, altered);
  await page.setInputFiles('#verify-form [name=file]', alteredPath);
  await page.click('#verify-form button[type=submit]');
  await page.waitForSelector('[data-testid=verify-result][data-matches=false]');

  // The export is listed among the past ones.
  await page.waitForSelector(`[data-testid=exports] tr[data-export="${id}"]`);
}
