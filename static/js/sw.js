/* Service worker: keeps the app shell and the volunteer's compound pages on the phone.
 *
 * - Static files: cache first (the shell is precached at install).
 * - Pages: network first; a copy of each compound, report and item page is kept, and
 *   served when there is no signal.
 * - /c/<token> without signal: redirect to the kept compound page with ?offline_scan=,
 *   where the page queues the scan with the phone's time (offline.js); a checkpoint
 *   sticker /k/<token> the same way, with ?offline_checkpoint=.
 * - Refresh (/sync/pages, asked for by the page): 3 pages at a time, then the kept pages
 *   are trimmed to the list (and the thumbnails its pages show).
 * Forms are never replayed here: the page's queue (IndexedDB) sends them.
 */
"use strict";
// The server replaces VERSION with a digest of the shell files (patrol/web/offline.py),
// so every deploy that changes one of them installs a new worker and a fresh shell.
// Kept pages and the token map are not versioned: a deploy must not empty them.
var VERSION = "dev";
var SHELL = "shell-" + VERSION, PAGES = "pages-v1", META = "meta-v1";
var SHELL_URLS = ["/offline", "/static/css/app.css", "/static/js/app.js",
  "/static/js/photos.js", "/static/js/offline.js", "/static/manifest.webmanifest",
  "/static/icons/icon-192.png"];
var KEEP = /^\/(compounds(\/\d+(\/report)?)?|items\/\d+)$/;
var NETWORK_TIMEOUT = 6000;

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(SHELL).then(function (c) { return c.addAll(SHELL_URLS); })
    .then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return [SHELL, PAGES, META].indexOf(n) === -1; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

function withTimeout(promise, ms) {
  return new Promise(function (resolve, reject) {
    var timer = setTimeout(function () { reject(new Error("timeout")); }, ms);
    promise.then(function (r) { clearTimeout(timer); resolve(r); },
                 function (e) { clearTimeout(timer); reject(e); });
  });
}

// Keep a copy of a page (or thumbnail) as it goes to the page. The write is part of the
// event (waitUntil): the browser may stop an idle worker, and a write outside the event
// could be cut off halfway.
function keep(path, response, event) {
  if (response.ok && response.type === "basic" && !response.redirected) {
    var copy = response.clone();
    var write = caches.open(PAGES).then(function (c) { return c.put(path, copy); })
      .catch(function () { /* storage full: the page still shows */ });
    try { event.waitUntil(write); } catch (e) { /* the event is over: the write goes on anyway */ }
  }
  return response;
}

function digest(text) {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)).then(function (buf) {
    return Array.prototype.map.call(new Uint8Array(buf), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  });
}

function aliases(name) {
  return caches.open(META).then(function (c) { return c.match(name); })
    .then(function (r) { return r ? r.json() : {}; }).catch(function () { return {}; });
}

function page(event, url) {
  return withTimeout(fetch(event.request), NETWORK_TIMEOUT).then(function (response) {
    return KEEP.test(url.pathname) ? keep(url.pathname, response, event) : response;
  }).catch(function () {
    // A gate poster (/c/) or a checkpoint sticker (/k/): the kept maps know their tokens
    // only by SHA-256 (see /sync/pages).
    var sticker = url.pathname.indexOf("/k/") === 0;
    if (url.pathname.indexOf("/c/") === 0 || sticker) {
      var token = decodeURIComponent(url.pathname.slice(3));
      return Promise.all([aliases(sticker ? "/__checkpoints" : "/__aliases"), digest(token)]).then(function (found) {
        var target = found[0][found[1]];
        // Only to a page that is kept: the fallback page belongs to nobody and could not
        // queue the scan for this user.
        return (target ? caches.match(target, { cacheName: PAGES }) : Promise.resolve(null))
          .then(function (kept) {
            if (!kept) return caches.match("/offline");
            var arg = sticker ? "?offline_checkpoint=" : "?offline_scan=";
            return Response.redirect(target + arg + encodeURIComponent(token), 302);
          });
      });
    }
    return caches.match(url.pathname, { cacheName: PAGES }).then(function (hit) {
      return hit || caches.match("/offline");
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(caches.match(request, { ignoreSearch: true }).then(function (hit) {
      return hit || fetch(request);
    }));
  } else if (request.mode === "navigate") {
    event.respondWith(page(event, url));
  } else if (/^\/photos\/\d+\/thumb\.jpg$/.test(url.pathname)) {
    event.respondWith(caches.match(request).then(function (hit) {
      return hit || fetch(request).then(function (r) { return keep(url.pathname, r, event); });
    }));
  }
});

// The page asks, when online, to refresh what is kept for offline use.
self.addEventListener("message", function (event) {
  if (!event.data) return;
  if (event.data.type === "precache") {
    // Kept pages belong to one user: another user on this phone starts afresh.
    event.waitUntil(forgetOtherUser(String(event.data.user || "")).then(recentlyPrecached)
      .then(function (recent) {
        if (recent) return null;
        // One refresh at a time: pages opened in quick succession each ask for one.
        if (!precaching) precaching = precache().then(function () { precaching = null; });
        return precaching;
      }));
  } else if (event.data.type === "forget") {
    // Signing out: drop kept pages (they show names); the outbox is the page's business.
    event.waitUntil(caches.delete(PAGES).then(function () { return caches.delete(META); }));
  }
});

var PRECACHE_EVERY = 5 * 60000;
var precaching = null;  // the refresh under way, if any
// Pages kept for later are rendered without the user's flashed messages (auth.py).
var PRECACHE_HEADERS = { "X-Patrol-Precache": "1" };

function forgetOtherUser(user) {
  return caches.open(META).then(function (meta) {
    return meta.match("/__user").then(function (r) { return r ? r.text() : null; })
      .then(function (kept) {
        if (kept === user) return null;
        return caches.delete(PAGES).then(function () {
          return Promise.all([meta.delete("/__aliases"), meta.delete("/__checkpoints"),
            meta.delete("/__precached"),
            meta.put("/__user", new Response(user))]);
        });
      });
  });
}

function recentlyPrecached() {
  return caches.open(META).then(function (c) { return c.match("/__precached"); })
    .then(function (r) { return r ? r.text() : "0"; })
    .then(function (when) { return Date.now() - Number(when) < PRECACHE_EVERY; });
}

// A few pages at a time: a phone on a weak link (and the server) is not hit with every
// page of the list at once.
var PRECACHE_PARALLEL = 3;
var THUMBS = /\/photos\/\d+\/thumb\.jpg/g;  // thumbnails a kept page shows
var PRECACHE_THUMBS = 300;

function inTurn(list, parallel, work) {
  var next = 0;
  function worker() {
    if (next >= list.length) return null;
    var item = list[next++];
    return Promise.resolve(item).then(work).catch(function () { /* work says */ }).then(worker);
  }
  var workers = [];
  for (var i = 0; i < Math.min(parallel, list.length); i++) workers.push(worker());
  return Promise.all(workers);
}

// Kept pages are the list's pages and the thumbnails those pages show; the rest (pages
// of compounds no longer on the list, items long closed) go, so the cache does not grow
// for ever.
function trim(pages, urls) {
  var wanted = {};
  urls.forEach(function (path) { wanted[path] = true; });
  return pages.keys().then(function (requests) {
    var path = function (r) { return new URL(r.url).pathname; };
    return Promise.all(requests.filter(function (r) { return wanted[path(r)]; }).map(function (r) {
      return pages.match(r).then(function (resp) { return resp ? resp.text() : ""; })
        .then(function (html) { (html.match(THUMBS) || []).forEach(function (p) { wanted[p] = true; }); });
    })).then(function () {
      return Promise.all(requests.filter(function (r) { return !wanted[path(r)]; })
        .map(function (r) { return pages.delete(r); }));
    });
  });
}

// A fetch whose answer (body included) is used within `ms`, else given up: a link that
// passes no data must not hold the one refresh run (and so every later one) for ever.
var PRECACHE_TIMEOUT = 30000;
function fetchWithin(path, options, use) {
  var ctl = self.AbortController ? new AbortController() : null;
  if (ctl) options.signal = ctl.signal;
  return withTimeout(fetch(path, options).then(use), PRECACHE_TIMEOUT).catch(function (err) {
    if (ctl) ctl.abort();
    throw err;
  });
}

function precache() {
  // The gate-token map is small and written first, so a scan without signal finds its
  // compound even if the signal fades halfway through the pages. Each page stands alone:
  // one that fails (no signal, or server trouble) does not undo the others. The time is written last, so an interrupted
  // run is simply done again next time.
  return fetchWithin("/sync/pages", { credentials: "same-origin" }, function (r) {
    return r.ok ? r.json() : null;
  }).then(function (list) {
    if (!list) return null;
    var failed = false;
    return caches.open(META).then(function (meta) {
      var json = { headers: { "Content-Type": "application/json" } };
      return Promise.all([meta.put("/__aliases", new Response(JSON.stringify(list.aliases), json)),
        meta.put("/__checkpoints", new Response(JSON.stringify(list.checkpoints || {}), json))]);
    }).then(function () {
      return caches.open(PAGES);
    }).then(function (pages) {
      var thumbs = {};  // the thumbnails the kept pages show (待回头看, duplicate suggestions)
      return inTurn(list.urls, PRECACHE_PARALLEL, function (path) {
        return fetchWithin(path, { credentials: "same-origin", headers: PRECACHE_HEADERS }, function (r) {
          if (r.status >= 500) { failed = true; return null; }  // server trouble: again later
          if (!r.ok || r.redirected) return null;
          return r.clone().text().then(function (html) {
            (html.match(THUMBS) || []).forEach(function (p) { thumbs[p] = true; });
            return pages.put(path, r);
          });
        }).catch(function () { failed = true; });
      }).then(function () {
        // Thumbnails not kept yet, so those pages show their photos without signal too.
        // One that fails is only a missing picture: it does not make the refresh run again.
        return inTurn(Object.keys(thumbs).slice(0, PRECACHE_THUMBS), PRECACHE_PARALLEL, function (p) {
          return pages.match(p).then(function (hit) {
            return hit ? null : fetchWithin(p, { credentials: "same-origin" }, function (r) {
              return r.ok && !r.redirected ? pages.put(p, r) : null;
            });
          });
        });
      }).then(function () { return trim(pages, list.urls); });
    }).then(function () {
      if (failed) return null;
      return caches.open(META).then(function (meta) {
        return meta.put("/__precached", new Response(String(Date.now())));
      });
    });
  }).catch(function () { return null; });
}
