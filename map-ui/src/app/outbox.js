// The outbox: every write of the app (pings, check-ins, photos and checklist answers) is put in
// IndexedDB first and sent from there in the order it was written, when the phone is online. A photo
// is kept as a Blob (`file`, with its form `fields`) and sent as multipart/form-data. A success or a refusal (4xx) takes an
// item out (a refusal is kept aside with the server's problem detail, for the rep to read); no
// answer or a 5xx keeps it, and the items after it wait. Retries send the same body (the same
// client ids), so the server stores each write once.
import { decide, otherSignIn, retryDelay, sendOrder } from './logic.js';

const DB = 'fieldvisit-app';

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      db.createObjectStore('outbox', { keyPath: 'seq', autoIncrement: true });
      db.createObjectStore('refused', { keyPath: 'seq' });
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function run(db, store, mode, fn) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(store, mode);
    const req = fn(tx.objectStore(store));
    tx.oncomplete = () => resolve(req?.result);
    tx.onerror = () => reject(tx.error);
  });
}

/** The fetch options of an item: its JSON body, or a form with its photo (multipart/form-data). */
export function requestOf(item) {
  if (!item.file) return { method: item.method, json: item.body };
  const form = new FormData();
  for (const [k, v] of Object.entries(item.form ?? {})) form.append(k, v);
  form.append('photo', item.file, item.file_name || 'photo.jpg');
  return { method: item.method, body: form };
}

/**
 * The outbox of `api` (its `send(path, options)` answers a fetch Response). `onChange` is called
 * after every change, `onResult(item, outcome, answer)` after every attempt that ended.
 * `signedInAs()` is the device the phone is signed in as: each write is stamped with it, and a
 * write made under another sign-in (the phone enrolled again as another device) is never sent with
 * the new one's token — it is set aside as refused, for the rep to read.
 */
export async function createOutbox({ api, isOnline = () => navigator.onLine, onChange = () => {}, onResult = () => {}, signedInAs = () => null }) {
  const db = await open();
  let draining = null;
  let notBefore = 0;
  let attempts = 0;

  const list = async (store = 'outbox') => sendOrder(await run(db, store, 'readonly', (s) => s.getAll()));

  async function add(item) {
    await run(db, 'outbox', 'readwrite', (s) => s.add({ ...item, device_id: signedInAs(), created_at: new Date().toISOString() }));
    onChange();
    drain();
  }

  async function sendOne(item) {
    let res;
    try {
      res = await api.send(item.path, requestOf(item));
    } catch {
      return { outcome: 'retry', status: 0 };
    }
    const body = await res.json().catch(() => null);
    return { outcome: decide(res.status), status: res.status, body };
  }

  async function drainNow() {
    for (;;) {
      const [item] = await list();
      if (!item || !isOnline() || Date.now() < notBefore) return;
      const { outcome, status, body } = otherSignIn(item, signedInAs())
        ? { outcome: 'refused', status: 0, body: { key: 'other_sign_in' } }
        : await sendOne(item);
      if (outcome === 'retry') {
        attempts += 1;
        notBefore = Date.now() + retryDelay(attempts) * 1000;
        onResult(item, outcome, { status, body });
        onChange();
        return;
      }
      attempts = 0;
      if (outcome === 'refused') {
        const problem = { status, title: body?.title ?? '', detail: body?.detail ?? '', errors: body?.errors ?? [], key: body?.key };
        await run(db, 'refused', 'readwrite', (s) => s.put({ ...item, problem, refused_at: new Date().toISOString() }));
      }
      await run(db, 'outbox', 'readwrite', (s) => s.delete(item.seq));
      onResult(item, outcome, { status, body });
      onChange();
    }
  }

  /** Sends what waits, once at a time (a call during a run joins it). */
  function drain({ now = false } = {}) {
    if (now) notBefore = 0;
    if (!draining) draining = drainNow().catch(() => {}).finally(() => { draining = null; });
    return draining;
  }

  return {
    add,
    drain,
    waiting: () => list('outbox'),
    refused: () => list('refused'),
    async dismiss(seq) { await run(db, 'refused', 'readwrite', (s) => s.delete(seq)); onChange(); },
  };
}
