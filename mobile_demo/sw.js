// sw.js: keeps the demo working offline.
//
// On install it caches everything site.json lists (page, onnxruntime-web, model) under a cache named after
// site.json's "build" (a hash of every file), then answers from that cache first: a phone with a bad
// connection gets the page at once instead of waiting for a request to time out. Each page load asks for
// site.json in the background; when the build changed (a new model or page), it caches the new build whole,
// drops the old one and tells the page, which offers a reload. Requests it does not know (another model
// through ?model=) go to the network and are kept for next time.

const PREFIX = 'skedge-demo-';
const SCOPE = new URL('./', self.location.href);
const SITE = new URL('site.json', SCOPE).href;

async function fetchSite() {
  const res = await fetch(SITE, { cache: 'no-store' });
  if (!res.ok) throw new Error(`site.json: HTTP ${res.status}`);
  return res;
}

async function precache(siteResponse) {
  const site = await siteResponse.clone().json();
  const name = PREFIX + site.build;
  const cache = await caches.open(name);
  // 'reload' skips the HTTP cache: the files cached are the ones the server has now.
  const urls = ['./', ...site.files].map((f) => new Request(new URL(f, SCOPE).href, { cache: 'reload' }));
  await cache.addAll(urls);
  // site.json goes in last, so a cache that holds it is complete.
  await cache.put(SITE, siteResponse);
  for (const key of await caches.keys()) {
    if (key.startsWith(PREFIX) && key !== name) await caches.delete(key);
  }
  return name;
}

async function cachedBuild() {
  const hit = await caches.match(SITE);
  return hit ? (await hit.json()).build : null;
}

async function checkForUpdate() {
  try {
    const res = await fetchSite();
    const fresh = (await res.clone().json()).build;
    if (fresh === (await cachedBuild())) return;
    await precache(res);
    for (const client of await self.clients.matchAll({ type: 'window' })) {
      client.postMessage({ type: 'skedge-updated', build: fresh });
    }
  } catch {
    // offline or the server is gone: keep serving what is cached
  }
}

self.addEventListener('install', (event) => {
  event.waitUntil(fetchSite().then(precache).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  // Take over the page that registered us, so the first visit is already offline-ready.
  event.waitUntil(self.clients.claim());
});

async function respond(event) {
  const req = event.request;
  const hit = await caches.match(req, { ignoreSearch: req.mode === 'navigate' });
  if (req.mode === 'navigate') event.waitUntil(checkForUpdate());
  if (hit) return hit;
  const res = await fetch(req);
  if (res.ok && res.type === 'basic') {
    const keys = (await caches.keys()).filter((k) => k.startsWith(PREFIX));
    if (keys.length) {
      const copy = res.clone();
      event.waitUntil(caches.open(keys[keys.length - 1]).then((c) => c.put(req, copy)));
    }
  }
  return res;
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || url.href === SITE) return;
  event.respondWith(respond(event));
});
