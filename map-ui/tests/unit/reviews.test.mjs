// The review queue's pure helpers: the filter as a query string, kinds, the bulk body and outcome.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  KINDS, MAX_BULK, apiPath, bulkBody, bulkCount, bulkFilter, bulkOutcome, fill, filterParams, itemKey, kindLabel, queuePath, reasonOf,
} from '../../src/map/views/reviewqueue.js';
import { REVIEWS_STRINGS } from '../../src/map/views/reviews.strings.js';

test('every kind has a label in both languages; an unknown kind is "other"', () => {
  for (const k of KINDS) {
    assert.ok(REVIEWS_STRINGS.en[kindLabel(k)], k);
    assert.ok(REVIEWS_STRINGS.zh[kindLabel(k)], k);
  }
  assert.equal(kindLabel('nonsense'), 'kind_other');
  assert.ok(REVIEWS_STRINGS.en.kind_other);
});

test('the filter becomes the queue\'s query: all kinds is the default, blanks are left out', () => {
  assert.equal(queuePath({ kinds: [...KINDS] }), '/reviews/queue?limit=50');
  assert.equal(queuePath({}), '/reviews/queue?limit=50');
  assert.equal(
    queuePath({ kinds: ['claim', 'suspect'], rep_id: '7', territory_id: '', from: '2026-11-01', to: ' ' }, { limit: 20, after: 'v:123' }),
    '/reviews/queue?kind=suspect%2Cclaim&rep_id=7&from=2026-11-01&limit=20&after=v%3A123',
  );
  assert.deepEqual(filterParams({ kinds: ['disputed', 'bogus'], territory_id: 3 }), [['kind', 'disputed'], ['territory_id', '3']]);
});

test('the bulk body names the items or the filter, with numbers for ids and the reason trimmed', () => {
  const items = [{ kind: 'suspect', id: 4, rep: {} }, { kind: 'claim', id: 9 }];
  assert.deepEqual(bulkBody('accepted', '  checked on the phone ', { items }), {
    decision: 'accepted', reason: 'checked on the phone', items: [{ kind: 'suspect', id: 4 }, { kind: 'claim', id: 9 }],
  });
  assert.deepEqual(bulkBody('rejected', 'no', { filter: { kinds: ['suspect'], rep_id: '5', from: '2026-11-01' } }), {
    decision: 'rejected', reason: 'no', filter: { kind: 'suspect', rep_id: 5, from: '2026-11-01' },
  });
  assert.deepEqual(bulkFilter({ kinds: [...KINDS], territory_id: '12' }), { territory_id: 12 });
});

test('the confirmation counts the selection, or the filter\'s matches capped at one request', () => {
  assert.deepEqual(bulkCount({ selected: 3, total: 900 }), { count: 3, remaining: 0 });
  assert.deepEqual(bulkCount({ selected: 3, total: 120, byFilter: true }), { count: 120, remaining: 0 });
  assert.deepEqual(bulkCount({ total: 700, byFilter: true }), { count: MAX_BULK, remaining: 700 - MAX_BULK });
});

test('a bulk answer lists each refusal by its key', () => {
  const o = bulkOutcome({
    decision: 'accepted', decided: [{ kind: 'suspect', id: 1 }, { kind: 'claim', id: 2 }],
    refused: [{ kind: 'disputed', id: 3, refusal: 'forbidden', detail: 'outside' }, { kind: 'claim', id: 4, refusal: 'conflict' }], remaining: 2,
  });
  assert.equal(o.decided, 2);
  assert.deepEqual(o.refused.map((r) => [r.key, r.refusal, r.detail]), [['disputed:3', 'forbidden', 'outside'], ['claim:4', 'conflict', '']]);
  assert.equal(o.remaining, 2);
  assert.deepEqual(bulkOutcome({}), { decided: 0, refused: [], remaining: 0 });
  for (const r of ['not_found', 'forbidden', 'conflict', 'invalid']) assert.ok(REVIEWS_STRINGS.zh[`refusal_${r}`], r);
});

test('keys, reasons, links and templates', () => {
  assert.equal(itemKey({ kind: 'claim', id: 8 }), 'claim:8');
  assert.equal(reasonOf('   '), null);
  assert.equal(reasonOf(' ok '), 'ok');
  assert.equal(apiPath('/api/v1/visits/3/reviews'), '/visits/3/reviews');
  assert.equal(apiPath('/visits/3'), '/visits/3');
  assert.equal(fill('{n} of {m}', { n: 2 }), '2 of {m}');
  assert.equal(fill(REVIEWS_STRINGS.en.bulk_confirm, { n: 5, decision: 'accepted' }), 'Apply “accepted” to 5 items?');
});
