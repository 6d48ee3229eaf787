// What the plan editor workflows share (mouse at 1280 px, touch at 390 px): a grid of outlets of
// the workflow's own, the plans view opened on a new plan for its rep with one outlet on Monday,
// the screen points of the outlets on the view's map, and what the editor and the API hold.
import assert from 'node:assert/strict';
import { ok, ownGrid } from './_team.mjs';

/**
 * A 3×3 grid of tier C outlets (outlet k in row floor(k / 3) south to north, column k % 3 west to
 * east) in a territory and with a rep of the workflow's own, north of the demo city; the plans
 * view opened (`open` options: viewport, touch) on a new plan for that rep, the first outlet
 * added from the search to Monday. `{page, rep, outlets, validFrom}`.
 */
export async function newPlanWithGrid(t, { key, label, lat, lon, open }) {
  const mgr = t.tokens.managerD1;
  const stamp = `${Date.now()}`;
  const step = 0.004;
  const { territory, rep } = await ownGrid(t, { key, label, lat, lon, half: step * 2, stamp });
  const outlets = [];
  for (let k = 0; k < 9; k += 1) {
    outlets.push(ok(await t.api(mgr, 'POST', '/outlets', {
      code: `WB${key.toUpperCase()}-${stamp}-${k}`, name: `${label} outlet ${k}`, channel_type: 'franchise_store', tier: 'C', territory_id: territory.id,
      lat: lat - step + Math.floor(k / 3) * step, lon: lon - step + (k % 3) * step,
    }), `outlet ${k}`));
  }
  const page = await t.open(mgr, { hash: '#plans', ...open });
  await page.waitForSelector(`#plans-rep option[value="${rep.id}"]`, { state: 'attached', timeout: 30000 });
  await page.selectOption('#plans-rep', String(rep.id));
  await page.waitForFunction((n) => globalThis.fieldvisitPlans.features.length === n, outlets.length, { timeout: 30000 });
  await page.click('#plans-new');
  const validFrom = await page.inputValue('#plan-form [name=valid_from]');
  await page.fill('#plans-filter', outlets[0].code);
  await page.click(`[data-testid=plans-found] [data-add="${outlets[0].id}"]`);
  await page.waitForSelector('[data-testid=plan-stops] [data-row="0"]');
  assert.equal(await page.inputValue('#plan-add-weekday'), '1', 'the day being edited is Monday');
  return { page, rep, outlets, validFrom };
}

/**
 * Turns the lasso on, fits the map to `outlets` (the grid) and answers the page points of a loop
 * round those of them at indices `chosen`, half way to their grid neighbours, `[[x, y], ...]`
 * closing near its start, and the map's centre then (to see that drawing does not pan).
 */
export async function lassoLoopRound(page, outlets, chosen) {
  await page.locator('#plans-map').scrollIntoViewIfNeeded();
  await page.click('[data-testid=plans-lasso]');
  assert.equal(await page.getAttribute('[data-testid=plans-lasso]', 'aria-pressed'), 'true');
  const points = await page.evaluate((all) => {
    const map = globalThis.fieldvisitPlansMap;
    const lons = all.map(([x]) => x), lats = all.map(([, y]) => y);
    map.fitBounds([[Math.min(...lons), Math.min(...lats)], [Math.max(...lons), Math.max(...lats)]], { padding: 50, duration: 0 });
    const box = map.getCanvas().getBoundingClientRect();
    return all.map(([x, y]) => {
      const p = map.project([x, y]);
      return { x: box.left + p.x, y: box.top + p.y, inside: p.x >= 0 && p.y >= 0 && p.x <= box.width && p.y <= box.height };
    });
  }, outlets.map((o) => [o.lon, o.lat]));
  assert.ok(points.every((p) => p.inside), `every outlet is on the map: ${JSON.stringify(points)}`);
  await page.waitForFunction(() => globalThis.fieldvisitPlansMap.loaded());
  // Half the grid's spacing, from its first row and column.
  const gap = Math.min(Math.abs(points[1].x - points[0].x), Math.abs(points[3].y - points[0].y)) / 2;
  const xs = chosen.map((k) => points[k].x), ys = chosen.map((k) => points[k].y);
  const [left, right, top, bottom] = [Math.min(...xs) - gap, Math.max(...xs) + gap, Math.min(...ys) - gap, Math.max(...ys) + gap];
  const centre = await mapCentre(page);
  return { loop: [[left, top], [right, top], [right, bottom], [left, bottom], [left, top + 2]], centre };
}

/** The plans map's centre, `[lon, lat]`. */
export function mapCentre(page) {
  return page.evaluate(() => globalThis.fieldvisitPlansMap.getCenter().toArray());
}

/** The editor's items, `[outlet_id, weekday, seq]`. */
export function editorItems(page) {
  return page.evaluate(() => globalThis.fieldvisitPlans.editor.items.map((i) => [i.outlet_id, Number(i.weekday), i.seq]));
}

/** The stops as listed, `[outlet id, number shown]`. */
export function stopsShown(page) {
  return page.$$eval('[data-testid=plan-stops] li.stop', (lis) => lis.map((li) => [Number(li.dataset.outlet), li.querySelector('strong').textContent.split('.')[0]]));
}

/** Saves the plan and answers the API's plan of `rep` starting `validFrom`. */
export async function savePlan(t, page, rep, validFrom) {
  await page.click('#plan-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('[data-testid=plan-saved]').textContent.length > 0, null, { timeout: 15000 });
  const saved = ok(await t.api(t.tokens.managerD1, 'GET', `/plans?rep_id=${rep.id}`), 'plans').find((p) => p.valid_from === validFrom);
  assert.ok(saved, 'the plan is saved');
  return saved;
}
