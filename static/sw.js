/* Minga service worker: keeps the app shell and the farmer's pages on the phone, so the
   pages open without signal. Served from /sw.js (root scope) by coop/listings/offline.py,
   which puts VERSION, SHELL (fingerprinted CSS, JS, icon, offline page), PAGES (the pages
   kept for use without signal, coop/listings/offline.py OFFLINE_PAGES), SEEN (patterns of
   the paths of pages of one object kept once opened, KEPT_WHEN_SEEN) and START before
   this code. Nothing here sends listings: the page's outbox.js does that. */
/* global VERSION, SHELL, PAGES, SEEN, OFFLINE, START */
"use strict";
var STATIC_CACHE = "minga-static-" + VERSION;
var PAGE_CACHE = "minga-pages";

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(STATIC_CACHE).then(function (cache) {
    return cache.addAll(SHELL);
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) {
      return k.indexOf("minga-static-") === 0 && k !== STATIC_CACHE;
    }).map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

function isPage(url) {
  // A page kept for use without signal, or the page of one object kept once opened (SEEN:
  // patterns of paths, e.g. a plot's page, where its boundary is walked offline).
  return PAGES.indexOf(url.pathname) !== -1 || SEEN.some(function (pattern) {
    return new RegExp(pattern).test(url.pathname);
  });
}

function putPage(url, response) {
  // Only a real page of the logged-in farmer: not a redirect to the login page.
  if (response.ok && !response.redirected && response.type === "basic") {
    var copy = response.clone();
    caches.open(PAGE_CACHE).then(function (cache) { cache.put(url.pathname, copy); });
  }
  return response;
}

// A kept page served without signal says so: the page (outbox.js) then shows its
// "Updated on …" line, the time the server made this copy.
function marked(response) {
  return response.text().then(function (html) {
    var headers = new Headers(response.headers);
    headers.delete("Content-Length");    // the body is a little longer now, and decoded
    headers.delete("Content-Encoding");
    return new Response(html.replace("<body ", "<body data-offline-copy=\"\" "), {
      status: response.status, statusText: response.statusText, headers: headers});
  });
}

function fromCache(request) {
  var url = new URL(request.url);
  // The home screen opens START ("/"), which sends a farmer to their first kept page.
  var path = url.pathname === START && PAGES.length ? PAGES[0] : url.pathname;
  return caches.match(path, {ignoreSearch: true, cacheName: PAGE_CACHE}).then(function (hit) {
    return hit ? marked(hit) : caches.match(OFFLINE);
  });
}

self.addEventListener("message", function (event) {
  // A farmer's page asks to keep the farmer pages ready for the next time without signal.
  if (event.data === "cache-pages") {
    // Only the pages not kept yet: on 2G every request counts.
    event.waitUntil(caches.open(PAGE_CACHE).then(function (cache) {
      return Promise.all(PAGES.map(function (path) {
        return cache.match(path).then(function (hit) {
          if (hit) { return; }
          return fetch(path, {credentials: "same-origin"}).then(function (r) {
            if (r.ok && !r.redirected) { return cache.put(path, r); }
          });
        }).catch(function () {});
      }));
    }));
  } else if (event.data === "forget-pages") {
    event.waitUntil(caches.delete(PAGE_CACHE));
  }
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (request.method !== "GET") {
    // Logging in or out: the cached pages belong to whoever was logged in before.
    if (url.pathname === "/logout" || url.pathname === "/login") {
      event.waitUntil(caches.delete(PAGE_CACHE));
    }
    return;
  }
  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(caches.match(request).then(function (hit) {
      return hit || fetch(request).then(function (response) {
        if (response.ok && url.searchParams.get("v")) {
          var copy = response.clone();
          caches.open(STATIC_CACHE).then(function (cache) { cache.put(request, copy); });
        }
        return response;
      });
    }));
    return;
  }
  if (request.mode === "navigate" || isPage(url)) {
    // Network first (the page is fresh when there is signal), the phone's copy without it.
    // A kept page fetched by the page itself (its refresh after the outbox sends) is kept too.
    event.respondWith(fetch(request).then(function (response) {
      return isPage(url) ? putPage(url, response) : response;
    }).catch(function () {
      return request.mode === "navigate" || isPage(url) ? fromCache(request) : Response.error();
    }));
  }
});
