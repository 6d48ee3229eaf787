// What the beat workflows share (a file starting with `_` is no workflow: workbench.mjs and
// tests/integration/workbench.rs skip it): an API answer that must have succeeded, and a grid
// territory of the district manager's district, with a rep of its own, for a workflow to stand alone.
import assert from 'node:assert/strict';

/** The body of a successful API answer; fails naming `what` with the status and body otherwise. */
export function ok(answer, what) {
  assert.ok(answer.status < 300, `${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/**
 * A square grid territory under the BJ-D1 manager's district, centred on `lat`/`lon` with a
 * half side of `half` degrees, and a rep in it, made by the admin: `{me (the manager's /me),
 * territory, rep}`. `key` names them (`WB-<KEY>-<stamp>`, `wb-<key>-<stamp>`), `label` titles them.
 */
export async function ownGrid(t, { key, label, lat, lon, half, stamp = `${Date.now()}` }) {
  const me = ok(await t.api(t.tokens.managerD1, 'GET', '/me'), 'me');
  const ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half], [lon - half, lat + half], [lon - half, lat - half]];
  const territory = ok(await t.api(t.tokens.admin, 'POST', '/territories', {
    parent_id: me.user.territory_id, code: `WB-${key.toUpperCase()}-${stamp}`, name: `${label} workflow ${stamp}`, level: 'grid',
    boundary: { type: 'Polygon', coordinates: [ring] },
  }), 'territory');
  const rep = ok(await t.api(t.tokens.admin, 'POST', '/users', {
    login: `wb-${key}-${stamp}`, name: `${label} rep ${stamp}`, role: 'rep', territory_id: territory.id,
  }), 'rep').user;
  return { me, territory, rep };
}
