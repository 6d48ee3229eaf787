// A district manager builds a plan in #plans: one outlet from the search,
// then a lasso drawn with the pointer round four outlets (one of them already on the day) adds
// exactly the other three; dragging the day's last stop to the top reorders it, and after Save
// the API's plan has the items in that order; "order by the solver" shows the day in the order
// `POST /beats/day-order` answered, with a travel no longer than before, and its 422 beside the
// row it names. Standing alone: the workflow makes its own territory (north of the demo city and
// of the beats workflow's), rep and a 3×3 grid of outlets.
import assert from 'node:assert/strict';
import { editorItems, lassoLoopRound, mapCentre, newPlanWithGrid, savePlan, stopsShown as shown } from './_planedit.mjs';

export const name = 'plan-editor: lasso, drag to reorder, order by the solver';

export default async function (t) {
  const { page, rep, outlets, validFrom } = await newPlanWithGrid(t, {
    key: 'planed', label: 'Plan editor', lat: 40.21 + Math.random() * 0.05, lon: 116.29 + Math.random() * 0.1,
    open: { viewport: { width: 1280, height: 900 } },
  });

  // The lasso: drawn with the pointer round outlets 0, 1, 3 and 4 (the south-west square).
  const lassoed = [0, 1, 3, 4].map((k) => outlets[k]);
  const { loop, centre } = await lassoLoopRound(page, outlets, [0, 1, 3, 4]);
  await page.mouse.move(...loop[0]);
  await page.mouse.down();
  for (const [x, y] of loop.slice(1)) await page.mouse.move(x, y, { steps: 8 });
  await page.mouse.up();
  await page.waitForSelector('[data-testid=plans-lasso-status][data-added]');
  assert.equal(await page.getAttribute('[data-testid=plans-lasso-status]', 'data-added'), '3', await page.textContent('[data-testid=plans-lasso-status]'));
  assert.deepEqual(await editorItems(page), lassoed.map((o, k) => [o.id, 1, k + 1]),
    'exactly the lassoed outlets are added to Monday, the one already there once');
  assert.deepEqual(await mapCentre(page), centre, 'the map did not pan while the lasso drew');
  await page.click('[data-testid=plans-lasso]');
  assert.equal(await page.getAttribute('[data-testid=plans-lasso]', 'aria-pressed'), 'false');

  // Drag the day's last stop (by its handle) to the top: the list and the numbers follow.
  const last = page.locator('[data-testid=plan-stops] li.stop >> nth=3');
  await last.scrollIntoViewIfNeeded();
  const from = await last.locator('.drag-handle').boundingBox();
  const first = await page.locator('[data-testid=plan-stops] li.stop >> nth=0').boundingBox();
  await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
  await page.mouse.down();
  await page.mouse.move(from.x + from.width / 2, first.y + 4, { steps: 20 });
  // Held over the top of the first stop, the dragged one takes its place; then dropped there.
  await page.waitForFunction((id) => document.querySelector('[data-testid=plan-stops] li.stop')?.dataset.outlet === String(id),
    lassoed[3].id, { timeout: 10000 });
  await page.mouse.up();
  const dragged = [lassoed[3], lassoed[0], lassoed[1], lassoed[2]].map((o) => o.id);
  await page.waitForFunction((ids) => [...document.querySelectorAll('[data-testid=plan-stops] li.stop strong')]
    .map((s) => s.textContent.split(' ')[0]).join() === ids.map((_, k) => `${k + 1}.`).join()
    && !document.querySelector('.sortable-chosen'), dragged, { timeout: 10000 }).catch(() => {});
  assert.deepEqual(await shown(page), dragged.map((id, k) => [id, String(k + 1)]), 'the last stop is now first, numbered 1');
  assert.deepEqual(await editorItems(page), dragged.map((id, k) => [id, 1, k + 1]));
  // The working hours check follows at once: 4 stops of 150 minutes (10 hours) overrun every Monday.
  for (let k = 0; k < 4; k += 1) {
    await page.fill(`[data-row="${k}"] [data-k=minutes]`, '150');
    await page.dispatchEvent(`[data-row="${k}"] [data-k=minutes]`, 'change');
  }
  await page.waitForSelector('[data-testid=days-summary][data-over="4"]');
  for (let k = 0; k < 4; k += 1) {
    await page.fill(`[data-row="${k}"] [data-k=minutes]`, '20');
    await page.dispatchEvent(`[data-row="${k}"] [data-k=minutes]`, 'change');
  }
  await page.waitForSelector('[data-testid=days-summary][data-over="0"]');
  await page.screenshot({ path: `${t.shots}/workbench-plan-editor.png`, fullPage: true });

  const saved = await savePlan(t, page, rep, validFrom);
  assert.deepEqual([...saved.items].sort((a, b) => a.seq - b.seq).map((i) => [i.outlet_id, i.seq, i.weekday]),
    dragged.map((id, k) => [id, k + 1, 1]), 'the API\'s plan has the dragged order');

  // The solver: a refusal is shown beside the row it names (a window that ends before it starts).
  await page.fill('[data-row="2"] [data-k=window_start]', '15:00');
  await page.fill('[data-row="2"] [data-k=window_end]', '14:00');
  await page.dispatchEvent('[data-row="2"] [data-k=window_end]', 'change');
  const refused = page.waitForResponse((r) => r.url().endsWith('/api/v1/beats/day-order'));
  await page.click('[data-testid=plan-solver]');
  assert.equal((await refused).status(), 422, 'a window ending before it starts is refused');
  await page.waitForFunction(() => document.querySelector('[data-error-for="items[2].window_end"], [data-error-for="items[2].window_start"]')
    && [...document.querySelectorAll('[data-row="2"] [data-error-for]')].some((e) => e.textContent.length > 0), null, { timeout: 10000 });
  assert.ok([...await page.$$eval('[data-row="0"] [data-error-for], [data-row="1"] [data-error-for], [data-row="3"] [data-error-for]',
    (els) => els.map((e) => e.textContent))].every((x) => x === ''), 'only the offending row is marked');
  await page.fill('[data-row="2"] [data-k=window_start]', '');
  await page.fill('[data-row="2"] [data-k=window_end]', '');
  await page.dispatchEvent('[data-row="2"] [data-k=window_end]', 'change');

  // Ordered by the solver: the day as the endpoint answered, and a travel no longer than before.
  const answered = page.waitForResponse((r) => r.url().endsWith('/api/v1/beats/day-order'));
  await page.click('[data-testid=plan-solver]');
  const res = await answered;
  assert.equal(res.status(), 200, await res.text());
  const answer = await res.json();
  await page.waitForSelector('[data-testid=day-travel]', { timeout: 30000 });
  const expected = [...answer.stops].sort((a, b) => a.seq - b.seq).map((s) => s.outlet_id).concat(answer.unplaced.map((u) => u.outlet_id));
  assert.deepEqual((await shown(page)).map(([id]) => id), expected, 'the day is shown in the solver\'s order');
  assert.deepEqual((await shown(page)).map(([, n]) => n), expected.map((_, k) => String(k + 1)));
  assert.equal(await page.locator('[data-testid=stop-arrival]').count(), answer.stops.length, 'each placed stop shows its arrival');
  const travel = Number(await page.getAttribute('[data-testid=day-travel]', 'data-travel'));
  const given = Number(await page.getAttribute('[data-testid=day-travel]', 'data-given'));
  assert.equal(travel, answer.travel_m);
  assert.equal(given, answer.given_travel_m);
  assert.ok(travel <= given, `the solver's travel ${travel} m is not longer than the order before, ${given} m`);
  assert.ok(given > 0, 'four stops apart are some travel');
  const travelText = await page.textContent('[data-testid=day-travel]');
  assert.ok(travelText.includes('km') || travelText.includes(' m'), travelText);
  await page.locator('[data-testid=plan-stops]').scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${t.shots}/workbench-plan-editor-solver.png` });
}
