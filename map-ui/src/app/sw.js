// The reps' app's service worker: the app shell from the cache (so the app opens with no network),
// refreshed when a new build's worker installs; the shell holds every script of the build (the entry
// and its chunks, such as the map's: build.mjs writes their names into FILES) and MapLibre's stylesheet.
// The day's data the app reads (who it is, the plan, check-ins, reminders, checklists, tier
// policies, outlets nearby, visits, compliance, access log, /config.json) comes from the network
// when it answers, else from the last answer kept; the offline basemap (../basemap/, fetched once at
// install and kept across builds) from its cache. Offline, what was never kept is answered here (an
// empty /config.json, a 503), so no request of the page goes to the network in vain.
// Writes never pass through here: the app's outbox sends them.
const VERSION = '__VERSION__';
const SHELL = `fv-app-shell-${VERSION}`;
const DATA = 'fv-app-data';
const BASEMAP = 'fv-app-basemap';
const FILES = ['./', 'index.html', '__SCRIPTS__', 'style.css', 'manifest.webmanifest', 'icon-192.png', 'icon-512.png', '../maplibre-gl.css'];

const BASEMAP_FILES = ['../basemap/countries.geojson', '../basemap/borders.geojson'];

/** Puts the basemap in its cache unless it is there (it changes only with the world-atlas package). */
function keepBasemap() {
  return caches.open(BASEMAP).then((c) => Promise.all(BASEMAP_FILES.map((f) => c.match(f).then((hit) => hit || c.add(f)))));
}

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => keepBasemap().catch(() => {})).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('fv-app-shell-') && k !== SHELL).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

const DAY_DATA = /^\/api\/v1\/(me|checklists|tier-policies|access-log|outlets\/nearest|reps\/\d+\/(plan|checkins|reminders|visits|compliance))$/;

const unavailable = () => new Response('', { status: 503, statusText: 'offline' });

/** The network's answer (kept in `cache`), else the one kept, else `missing()`, when the network fails. */
function networkFirst(req, cache, missing = unavailable) {
  return fetch(req)
    .then((res) => {
      if (res.ok) { const copy = res.clone(); caches.open(cache).then((c) => c.put(req, copy)); }
      return res;
    })
    .catch(() => caches.open(cache).then((c) => c.match(req)).then((hit) => hit || missing()));
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin) return;
  const scope = new URL(self.registration.scope).pathname;
  if (DAY_DATA.test(url.pathname)) {
    event.respondWith(networkFirst(req, DATA));
  } else if (url.pathname === '/config.json') {
    event.respondWith(networkFirst(req, DATA, () => new Response('{}', { headers: { 'Content-Type': 'application/json' } })));
  } else if (url.pathname.endsWith('.pmtiles')) {
    // The street basemap is read in byte ranges, which the cache cannot answer: the network's.
  } else if (url.pathname.startsWith('/basemap/')) {
    event.respondWith(caches.open(BASEMAP).then((c) => c.match(req)).then((hit) => hit || networkFirst(req, BASEMAP)));
  } else if (url.pathname.startsWith(scope) || url.pathname === '/maplibre-gl.css') {
    event.respondWith(
      caches.open(SHELL).then((c) => c.match(req, { ignoreSearch: true }).then((hit) => hit || fetch(req))),
    );
  }
});
