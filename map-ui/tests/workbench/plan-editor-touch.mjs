// The plan editor on a phone (390 px, a touch screen, fingers as the browser's own touch events):
// a lasso drawn with a finger round four outlets (one already on the day) adds exactly the other
// three and does not pan the map; dragging the day's last stop by its handle to the top reorders
// the day, and after Save the API's plan has that order. Standing alone: its own territory (north
// of the desktop plan editor's), rep and 3×3 grid of outlets.
import assert from 'node:assert/strict';
import { editorItems, lassoLoopRound, mapCentre, newPlanWithGrid, savePlan, stopsShown } from './_planedit.mjs';

export const name = 'plan-editor-touch: lasso and drag with a finger at 390 px';

/** One finger through `path` (page points): touch start, moves `steps` apart, touch end. */
async function swipe(page, path, steps = 8) {
  const cdp = await page.context().newCDPSession(page);
  const touch = (type, [x, y]) => cdp.send('Input.dispatchTouchEvent', { type, touchPoints: type === 'touchEnd' ? [] : [{ x, y }] });
  await touch('touchStart', path[0]);
  for (let i = 1; i < path.length; i += 1) {
    const [[x0, y0], [x1, y1]] = [path[i - 1], path[i]];
    for (let k = 1; k <= steps; k += 1) await touch('touchMove', [x0 + ((x1 - x0) * k) / steps, y0 + ((y1 - y0) * k) / steps]);
  }
  return { end: () => touch('touchEnd', path.at(-1)), cdp };
}

export default async function (t) {
  const { page, rep, outlets, validFrom } = await newPlanWithGrid(t, {
    key: 'planedt', label: 'Plan editor touch', lat: 40.30 + Math.random() * 0.04, lon: 116.29 + Math.random() * 0.1,
    open: { viewport: { width: 390, height: 844 }, touch: true },
  });
  assert.ok(await page.evaluate(() => navigator.maxTouchPoints > 0 && window.innerWidth <= 390), 'a phone-sized touch screen');

  // The lasso with a finger round outlets 0, 1, 3 and 4.
  const lassoed = [0, 1, 3, 4].map((k) => outlets[k]);
  const { loop, centre } = await lassoLoopRound(page, outlets, [0, 1, 3, 4]);
  const finger = await swipe(page, loop);
  await finger.end();
  await page.waitForSelector('[data-testid=plans-lasso-status][data-added]');
  assert.equal(await page.getAttribute('[data-testid=plans-lasso-status]', 'data-added'), '3', await page.textContent('[data-testid=plans-lasso-status]'));
  assert.deepEqual(await editorItems(page), lassoed.map((o, k) => [o.id, 1, k + 1]),
    'exactly the lassoed outlets are added to Monday, the one already there once');
  assert.deepEqual(await mapCentre(page), centre, 'the map did not pan while the finger drew');
  await page.click('[data-testid=plans-lasso]');

  // A finger on the last stop's handle, moved over the first stop, held there, then lifted.
  // The day's first stop scrolled to the top of the screen: the last one's handle is below it.
  await page.$eval('[data-testid=plan-stops] li.stop', (li) => li.scrollIntoView({ block: 'start' }));
  const from = await page.locator('[data-testid=plan-stops] li.stop >> nth=3').locator('.drag-handle').boundingBox();
  const first = await page.locator('[data-testid=plan-stops] li.stop >> nth=0').boundingBox();
  assert.ok(from.width >= 44 && from.height >= 44, `the handle is a 44 px touch target: ${JSON.stringify(from)}`);
  assert.ok(first.y >= 0 && from.y + from.height / 2 < 844, `both ends of the drag are on the screen: ${first.y}, ${from.y}`);
  const x = from.x + from.width / 2;
  const drag = await swipe(page, [[x, from.y + from.height / 2], [x, first.y + 4]], 20);
  await page.waitForFunction((id) => document.querySelector('[data-testid=plan-stops] li.stop')?.dataset.outlet === String(id),
    lassoed[3].id, { timeout: 10000 });
  await drag.end();
  const dragged = [lassoed[3], lassoed[0], lassoed[1], lassoed[2]].map((o) => o.id);
  // Lifted: the editor takes the new order (and redraws the day numbered anew).
  await page.waitForFunction((id) => globalThis.fieldvisitPlans.editor.items.find((i) => i.seq === 1)?.outlet_id === id
    && !document.querySelector('.sortable-chosen'), lassoed[3].id, { timeout: 10000 });
  assert.deepEqual(await stopsShown(page), dragged.map((id, k) => [id, String(k + 1)]), 'the last stop is now first, numbered 1');
  assert.deepEqual(await editorItems(page), dragged.map((id, k) => [id, 1, k + 1]));
  await page.screenshot({ path: `${t.shots}/workbench-plan-editor-touch.png`, fullPage: true });

  const saved = await savePlan(t, page, rep, validFrom);
  assert.deepEqual([...saved.items].sort((a, b) => a.seq - b.seq).map((i) => [i.outlet_id, i.seq, i.weekday]),
    dragged.map((id, k) => [id, k + 1, 1]), 'the API\'s plan has the order the finger gave');
}
