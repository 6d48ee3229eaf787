// The reps' app's service worker: the app shell from the cache (so the app opens with no network),
// refreshed when a new build's worker installs; the day's data the app reads (who it is, the day's
// plan, the day's check-ins) from the network when it answers, else from the last answer kept.
// Writes never pass through here: the app's outbox sends them.
const VERSION = '__VERSION__';
const SHELL = `fv-app-shell-${VERSION}`;
const DATA = 'fv-app-data';
const FILES = ['./', 'index.html', 'app.js', 'style.css', 'manifest.webmanifest', 'icon-192.png', 'icon-512.png'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('fv-app-shell-') && k !== SHELL).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

const DAY_DATA = /^\/api\/v1\/(me|reps\/\d+\/(plan|checkins))$/;

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin) return;
  const scope = new URL(self.registration.scope).pathname;
  if (DAY_DATA.test(url.pathname)) {
    event.respondWith(
      fetch(req)
        .then((res) => {
          if (res.ok) { const copy = res.clone(); caches.open(DATA).then((c) => c.put(req, copy)); }
          return res;
        })
        .catch(() => caches.open(DATA).then((c) => c.match(req)).then((hit) => hit || Response.error())),
    );
  } else if (url.pathname.startsWith(scope)) {
    event.respondWith(
      caches.open(SHELL).then((c) => c.match(req, { ignoreSearch: true }).then((hit) => hit || fetch(req))),
    );
  }
});
