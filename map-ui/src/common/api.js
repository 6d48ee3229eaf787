// The API client of every view of both apps: paths under /api/v1, the bearer token kept in the
// browser's storage, JSON in and out, and a failed response's RFC 9457 problem (problem+json)
// turned into an ApiError carrying its status, title, detail and field errors.

/** A failed API call: `status`, `title`, `detail` and `errors` (`[{ field, reason, index? }]`). */
export class ApiError extends Error {
  constructor({ status, title, detail, errors, type, statusText } = {}) {
    super(detail || title || statusText || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.title = title || statusText || '';
    this.detail = detail || '';
    this.errors = Array.isArray(errors) ? errors : [];
    this.type = type;
  }
}

/** The ApiError of a failed response, from its problem+json body when it has one. */
export async function problemOf(res) {
  const body = await res.json().catch(() => null);
  const problem = body && typeof body === 'object' && !Array.isArray(body) ? body : {};
  return new ApiError({ ...problem, status: res.status, statusText: res.statusText });
}

/** `path` with the paging parameters of one page of a list (`limit`, and `after` the cursor). */
export function pagePath(path, limit, after) {
  return `${path}${path.includes('?') ? '&' : '?'}limit=${limit}${after == null ? '' : `&after=${after}`}`;
}

/**
 * The complete frames of a `text/event-stream` buffer (`{ event, data }`, frames end with a blank
 * line) and the incomplete rest, to be prefixed to what arrives next.
 */
export function splitEvents(buffer) {
  const events = [];
  let rest = buffer;
  let end;
  while ((end = rest.indexOf('\n\n')) >= 0) {
    const frame = rest.slice(0, end);
    rest = rest.slice(end + 2);
    events.push({ event: /^event: (.*)$/m.exec(frame)?.[1], data: /^data: (.*)$/m.exec(frame)?.[1] });
  }
  return { events, rest };
}

/**
 * A client for the API at `base`. The token is read from `storage` under `tokenKey` (the managers'
 * map keeps it for the browser session only); `fetch` is replaceable for tests.
 */
export function createApi({ base = '/api/v1', storage = globalThis.sessionStorage, tokenKey = 'fv.token', fetch: fetchFn } = {}) {
  let token = storage?.getItem(tokenKey) ?? null;
  const doFetch = (url, options) => (fetchFn ?? globalThis.fetch)(url, options);

  /** The response to `path` with the token sent (not checked: see `request`). */
  function send(path, options = {}) {
    const { json, ...rest } = options;
    const headers = { Authorization: `Bearer ${token}`, ...(json === undefined ? {} : { 'Content-Type': 'application/json' }), ...(options.headers || {}) };
    return doFetch(`${base}${path}`, { ...rest, headers, ...(json === undefined ? {} : { body: JSON.stringify(json) }) });
  }

  /** The JSON answer to `path` (null for 204); an ApiError when the answer is not a success. */
  async function request(path, options = {}) {
    const res = await send(path, options);
    if (!res.ok) throw await problemOf(res);
    return res.status === 204 ? null : res.json();
  }

  /** Every item of a paged list (`next` cursor), up to `max`. */
  async function all(path, max = 20000) {
    const items = [];
    for (let after = null; items.length < max;) {
      const page = await request(pagePath(path, 1000, after));
      items.push(...(page.items ?? []));
      if (page.next == null) break;
      after = page.next;
    }
    return items;
  }

  /**
   * Reads the event stream at `path` (with fetch, so that the token goes in the Authorization
   * header: EventSource cannot send it), calling `onEvent({ event, data })` per frame until it ends.
   */
  async function stream(path, onEvent) {
    const res = await send(path);
    if (!res.ok) throw await problemOf(res);
    if (!res.body) throw new ApiError({ status: res.status, detail: 'no body to read' });
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const { events, rest } = splitEvents(buffer + value);
      buffer = rest;
      events.forEach(onEvent);
    }
  }

  return {
    get token() { return token; },
    signIn(value) { token = value; storage?.setItem(tokenKey, value); },
    signOut() { token = null; storage?.removeItem(tokenKey); },
    send,
    request,
    all,
    stream,
  };
}
