// The API client (src/common/api.js), against a stand-in fetch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, createApi, pagePath, problemOf, splitEvents } from '../../src/common/api.js';

function memoryStorage(initial = {}) {
  const m = new Map(Object.entries(initial));
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k), m };
}

/** A fetch answering with `answer(url, options)` and recording each call. */
function fakeFetch(answer) {
  const calls = [];
  const fetch = async (url, options) => { calls.push({ url, options }); return answer(url, options); };
  return { fetch, calls };
}

const json = (body, status = 200, headers = {}) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });

test('requests go under the base with the stored token, and JSON comes back', async () => {
  const { fetch, calls } = fakeFetch(() => json({ kind: 'user' }));
  const api = createApi({ storage: memoryStorage({ 'fv.token': 'abc' }), fetch });
  assert.equal(api.token, 'abc');
  assert.deepEqual(await api.request('/me', { headers: { Accept: 'application/geo+json' } }), { kind: 'user' });
  assert.equal(calls[0].url, '/api/v1/me');
  assert.deepEqual(calls[0].options.headers, { Authorization: 'Bearer abc', Accept: 'application/geo+json' });
  assert.equal(calls[0].options.body, undefined);
});

test('a JSON body is serialised with its content type', async () => {
  const { fetch, calls } = fakeFetch(() => json({ id: 1 }, 201));
  const api = createApi({ base: '/x', storage: memoryStorage(), fetch });
  api.signIn('t1');
  await api.request('/visits/3/reviews', { method: 'POST', json: { decision: 'rejected', reason: 'no photo' } });
  assert.equal(calls[0].url, '/x/visits/3/reviews');
  assert.equal(calls[0].options.method, 'POST');
  assert.equal(calls[0].options.body, '{"decision":"rejected","reason":"no photo"}');
  assert.deepEqual(calls[0].options.headers, { Authorization: 'Bearer t1', 'Content-Type': 'application/json' });
  assert.equal('json' in calls[0].options, false);
});

test('no content is null', async () => {
  const api = createApi({ storage: memoryStorage(), fetch: async () => new Response(null, { status: 204 }) });
  assert.equal(await api.request('/x', { method: 'DELETE' }), null);
});

test('a problem+json answer becomes an ApiError with its status, title, detail and field errors', async () => {
  const problem = {
    type: '/problems/unprocessable-entity', title: 'Unprocessable Entity', status: 422,
    detail: 'the outlet is not valid', errors: [{ field: 'lat', reason: 'must be between -90 and 90' }, { index: 2, field: 'code', reason: 'is required' }],
  };
  const api = createApi({ storage: memoryStorage({ 'fv.token': 'abc' }), fetch: async () => json(problem, 422, { 'Content-Type': 'application/problem+json' }) });
  const e = await api.request('/outlets', { method: 'POST', json: {} }).catch((x) => x);
  assert.ok(e instanceof ApiError);
  assert.ok(e instanceof Error);
  assert.equal(e.status, 422);
  assert.equal(e.title, 'Unprocessable Entity');
  assert.equal(e.detail, 'the outlet is not valid');
  assert.equal(e.message, 'the outlet is not valid');
  assert.equal(e.type, '/problems/unprocessable-entity');
  assert.deepEqual(e.errors, problem.errors);
});

test('an error without a problem body still has its status and a message', async () => {
  const e = await problemOf(new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }));
  assert.equal(e.status, 502);
  assert.equal(e.message, 'Bad Gateway');
  assert.equal(e.title, 'Bad Gateway');
  assert.equal(e.detail, '');
  assert.deepEqual(e.errors, []);
  const bare = await problemOf(new Response('', { status: 500 }));
  assert.equal(bare.message, 'HTTP 500');
  // The answer's status wins over one in the body; a title is the message when there is no detail.
  const titled = await problemOf(json({ title: 'Unauthorized', status: 200 }, 401));
  assert.equal(titled.status, 401);
  assert.equal(titled.message, 'Unauthorized');
});

test('signing in stores the token, signing out forgets it', () => {
  const storage = memoryStorage();
  const api = createApi({ storage, tokenKey: 'k', fetch: async () => json({}) });
  assert.equal(api.token, null);
  api.signIn('secret');
  assert.equal(storage.getItem('k'), 'secret');
  assert.equal(api.token, 'secret');
  api.signOut();
  assert.equal(storage.getItem('k'), null);
  assert.equal(api.token, null);
});

test('a paged list is read page by page up to the cap', async () => {
  assert.equal(pagePath('/users', 1000, null), '/users?limit=1000');
  assert.equal(pagePath('/users?role=rep', 1000, 42), '/users?role=rep&limit=1000&after=42');
  const pages = { '': { items: [1, 2], next: 2 }, 2: { items: [3, 4], next: 4 }, 4: { items: [5], next: null } };
  const { fetch, calls } = fakeFetch((url) => json(pages[new URL(url, 'http://h').searchParams.get('after') ?? '']));
  const api = createApi({ storage: memoryStorage(), fetch });
  assert.deepEqual(await api.all('/territories'), [1, 2, 3, 4, 5]);
  assert.deepEqual(calls.map((c) => c.url), ['/api/v1/territories?limit=1000', '/api/v1/territories?limit=1000&after=2', '/api/v1/territories?limit=1000&after=4']);
  calls.length = 0;
  assert.deepEqual(await api.all('/territories', 3), [1, 2, 3, 4]);
  assert.equal(calls.length, 2);
});

test('event-stream frames are split at blank lines, the rest kept for later', () => {
  const { events, rest } = splitEvents('event: position\ndata: {"a":1}\n\n: keep-alive\n\nevent: position\ndata: {"a"');
  assert.deepEqual(events, [{ event: 'position', data: '{"a":1}' }, { event: undefined, data: undefined }]);
  assert.equal(rest, 'event: position\ndata: {"a"');
  assert.deepEqual(splitEvents('').events, []);
});

test('a stream is read across chunk boundaries until it ends', async () => {
  const chunks = ['event: position\nda', 'ta: {"device_id":1}\n', '\nevent: position\ndata: {"device_id":2}\n\n'];
  const body = new ReadableStream({ start(c) { for (const x of chunks) c.enqueue(new TextEncoder().encode(x)); c.close(); } });
  const { fetch, calls } = fakeFetch(() => new Response(body, { headers: { 'Content-Type': 'text/event-stream' } }));
  const api = createApi({ storage: memoryStorage({ 'fv.token': 'abc' }), fetch });
  const seen = [];
  await api.stream('/live', (e) => seen.push(e));
  assert.deepEqual(seen, [{ event: 'position', data: '{"device_id":1}' }, { event: 'position', data: '{"device_id":2}' }]);
  assert.equal(calls[0].options.headers.Authorization, 'Bearer abc');
  const refused = createApi({ storage: memoryStorage(), fetch: async () => json({ title: 'Forbidden', detail: 'not yours' }, 403) });
  await assert.rejects(refused.stream('/live', () => {}), { status: 403, message: 'not yours' });
});
