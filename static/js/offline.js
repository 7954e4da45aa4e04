/* The outbox: every report, check and offline scan is saved in IndexedDB first, then sent.
 *
 * A record leaves the phone only after the server confirms it (2xx). Reports carry a
 * client UUID the server treats as an idempotency key, so a send whose answer was lost
 * can be repeated safely. A fresh CSRF token is fetched at send time (/sync/token), so
 * hours offline never make a queued form stale. Sync runs on the `online` event, at page
 * start, every 30 s while open, from the button, with exponential backoff per record.
 * No Background Sync: it exists only in Chromium. See docs/offline.md.
 */
(function () {
  "use strict";
  if (!window.indexedDB || !window.fetch || !window.Promise) return;
  var T = {};
  try { T = JSON.parse(document.body.dataset.t || "{}"); } catch (e) { /* fallbacks */ }
  var t = function (k, d) { return T[k] || d; };
  var me = document.body.dataset.user || "";
  var PERIOD = 30000, MAX_BACKOFF = 10 * 60000;

  // --- IndexedDB ------------------------------------------------------------------
  var dbp = new Promise(function (resolve, reject) {
    var req = indexedDB.open("patrol", 1);
    req.onupgradeneeded = function () { req.result.createObjectStore("outbox", { keyPath: "key" }); };
    req.onsuccess = function () { resolve(req.result); };
    req.onerror = function () { reject(req.error); };
  });
  function store(mode) {
    return dbp.then(function (db) { return db.transaction("outbox", mode).objectStore("outbox"); });
  }
  function done(req) {
    return new Promise(function (resolve, reject) {
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }
  function put(rec) { return store("readwrite").then(function (s) { return done(s.put(rec)); }); }
  function remove(key) { return store("readwrite").then(function (s) { return done(s.delete(key)); }); }
  function all() {
    return store("readonly").then(function (s) { return done(s.getAll()); }).then(function (list) {
      return list.sort(function (a, b) { return a.created < b.created ? -1 : a.created > b.created ? 1 : 0; });
    });
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = Math.random() * 16 | 0;
      return (c === "x" ? r : (r & 3 | 8)).toString(16);
    });
  }

  // --- sending --------------------------------------------------------------------
  var running = null;
  var again = false; // a forced sync was asked for while one was running
  var sentInRun = 0;  // records the background sync delivered, for the "N uploaded" note

  function token() {
    return fetch("/sync/token", { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (r.status === 401) throw { login: true };
      if (!r.ok) throw { network: true };
      return r.json();
    }, function () { throw { network: true }; });
  }

  function post(url, body, csrf) {
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "X-Patrol-Sync": "1" }
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        return { status: r.status, data: data };
      });
    }, function () { return { status: 0, data: {} }; });
  }

  function sendPhotos(rec, csrf) {
    // Photos first, one by one; each stored id is saved so a retry never resends it.
    return rec.photos.reduce(function (chain, photo) {
      return chain.then(function () {
        if (photo.id) return null;
        var body = new FormData();
        body.append("photo", photo.blob, "photo.jpg");
        body.append("kind", photo.kind || "before");
        return post("/photos", body, csrf).then(function (res) {
          if (res.status === 201) {
            photo.id = res.data.id;
            delete photo.blob;
            return put(rec);
          }
          throw res;
        });
      });
    }, Promise.resolve());
  }

  function sendOne(rec, csrf) {
    rec.state = "sending";
    render();
    return sendPhotos(rec, csrf).then(function () {
      var body = new FormData();
      rec.fields.forEach(function (kv) { body.append(kv[0], kv[1]); });
      rec.photos.forEach(function (p) { body.append(p.field, p.id); });
      body.append("sent_at", new Date().toISOString()); // lets the server correct our clock
      return post(rec.url, body, csrf);
    }).then(function (res) {
      if (res.status >= 200 && res.status < 300) {
        return remove(rec.key).then(function () { return { ok: true, url: res.data.url }; });
      }
      throw res;
    }).catch(function (res) {
      var status = res && res.status || 0;
      rec.attempts = (rec.attempts || 0) + 1;
      if (status === 401) {
        rec.state = "login";
        rec.error = t("login", "Please sign in again.");
      } else if (status >= 400 && status < 500 && status !== 408 && status !== 429 &&
                 !(res.data && res.data.retry)) {
        rec.state = "rejected"; // the server said no: keep it, say why, don't retry
        rec.error = (res.data && res.data.error) || ("HTTP " + status);
      } else {
        rec.state = "waiting";
        rec.error = (res.data && res.data.error) || (status ? "HTTP " + status : t("noSignal", "No signal"));
        rec.next = Date.now() + Math.min(MAX_BACKOFF, 5000 * Math.pow(2, rec.attempts - 1));
      }
      return put(rec).then(function () {
        return { ok: false, status: status, error: rec.error, rejected: rec.state === "rejected" };
      });
    });
  }

  // On-the-spot checks (and fixes on the spot) need their scan on the server first.
  function needsScan(rec) {
    return rec.kind === "act" || rec.fields.some(function (kv) { return kv[0] === "fixed_on_spot"; });
  }

  function sync(force) {
    // A tap during a run must not be lost: records that failed in this run would
    // otherwise sit out their backoff. Run once more, forced, when this one ends.
    if (running) { if (force) again = true; return running; }
    running = all().then(function (list) {
      var mine = list.filter(function (r) { return r.user === me && r.state !== "rejected"; });
      var due = mine.filter(function (r) { return force || !r.next || r.next <= Date.now(); });
      if (!due.length) return null;
      return token().then(function (tok) {
        if (String(tok.user) !== me) return null; // a kept page of another user: wait
        // One by one, oldest first; a failure does not hold up the records after it,
        // except that a check waits for any earlier scan still on the phone.
        return due.reduce(function (chain, rec) {
          return chain.then(function () {
            var scanFirst = needsScan(rec) && mine.some(function (o) {
              return o.kind === "scan" && o.created <= rec.created && !o.sent;
            });
            if (scanFirst) return null;
            return sendOne(rec, tok.csrf).then(function (res) {
              if (res.ok) { rec.sent = true; sentInRun += 1; }
            });
          });
        }, Promise.resolve());
      }, function (err) {
        if (err && err.login) {
          due.forEach(function (r) { r.state = "login"; r.error = t("login", "Please sign in again."); put(r); });
        }
      });
    }).then(finish, finish);
    return running;
  }

  function finish() {
    running = null;
    render();
    if (sentInRun) { announce(sentInRun); sentInRun = 0; }
    if (again) { again = false; return sync(true); }
  }

  // The bar just vanishing says nothing: say what went.
  function announce(n) {
    var main = document.querySelector("main");
    if (!main) return;
    var old = document.getElementById("sent-note");
    if (old) old.remove();
    var note = document.createElement("p");
    note.id = "sent-note";
    note.className = "flash ok";
    note.setAttribute("role", "status");
    note.textContent = t("sent", "{n} uploaded.").replace("{n}", n);
    main.insertBefore(note, main.firstChild);
  }

  // --- the queue bar ----------------------------------------------------------------
  var bar = document.getElementById("queue");
  var persistAsked = false;
  function render() {
    if (!bar) return Promise.resolve();
    return all().then(function (list) {
      list = list.filter(function (r) { return r.user === me; });
      bar.hidden = list.length === 0;
      if (list.length && !persistAsked) { persistAsked = true; persist(); } // once per page
      var count = bar.querySelector(".count");
      count.textContent = t("queued", "{n} waiting to upload").replace("{n}", list.length);
      var ul = bar.querySelector("ul");
      ul.textContent = "";
      // A refused record or a sign-in needed is the user's business: show it unasked.
      if (list.some(function (r) { return r.state === "rejected" || r.state === "login"; })) {
        bar.querySelector("details").open = true;
      }
      list.forEach(function (r) {
        var li = document.createElement("li");
        li.className = "q-" + r.state;
        li.textContent = r.label + " · " + t("state_" + r.state, r.state) + (r.error ? " · " + r.error : "");
        if (r.state === "rejected") {
          var drop = document.createElement("button");
          drop.type = "button";
          drop.className = "link";
          drop.textContent = t("discard", "Discard");
          drop.addEventListener("click", function () {
            if (window.confirm(t("discardConfirm", "Delete this record from the phone?"))) remove(r.key).then(render);
          });
          li.appendChild(drop);
        }
        ul.appendChild(li);
      });
    });
  }

  function persist() {
    var warn = bar && bar.querySelector(".not-persistent");
    function say(granted) { if (warn) warn.hidden = !!granted; }
    // Without the API (older iOS, some in-app browsers) nothing is promised either.
    if (!navigator.storage || !navigator.storage.persist) return say(false);
    navigator.storage.persisted().then(function (yes) {
      return yes || navigator.storage.persist();
    }).then(say, function () { say(false); });
  }

  // --- saving forms -------------------------------------------------------------------
  function label(form) {
    // "小区A1 · 上报隐患 · 飞线充电": the chosen category tells two waiting reports apart.
    var text = form.dataset.label || document.title;
    var chosen = form.querySelector("input[name=category]:checked");
    var name = chosen && chosen.closest("label") && chosen.closest("label").querySelector(".name");
    return name ? text + " · " + name.textContent.trim() : text;
  }

  // Save a form (with its photo entries from photos.js) and try to send it at once.
  function submit(form, photoFields) {
    var fields = [];
    new FormData(form).forEach(function (value, name) {
      if (typeof value === "string" && name !== "csrf_token" && name.indexOf("kept_") !== 0) fields.push([name, value]);
    });
    var now = new Date().toISOString();
    fields.push(["device_at", now]);
    var photos = [];
    photoFields.forEach(function (f) {
      f.live().forEach(function (e) {
        photos.push(e.id ? { field: f.name, id: e.id } : { field: f.name, kind: f.kind, blob: e.blob || e.file });
      });
    });
    var rec = { key: uuid(), user: me, kind: form.dataset.kind || "form", url: form.getAttribute("action") || location.pathname,
      fields: fields, photos: photos, created: now, label: label(form), state: "waiting", attempts: 0 };
    return put(rec).then(render).then(function () {
      if (!navigator.onLine) return { ok: false, queued: true };
      return (running || Promise.resolve()).then(function () {
        return token().then(function (tok) {
          if (String(tok.user) !== me) return { ok: false, status: 0 };
          return sendOne(rec, tok.csrf);
        }, function () { return { ok: false, status: 0 }; });
      });
    }).then(function (res) {
      res.key = rec.key;
      render();
      return res;
    });
  }

  function discard(key) { return remove(key).then(render); }

  function queueScan(token, compoundName) {
    var fields = [["token", token], ["device_at", new Date().toISOString()]];
    var compound = (location.pathname.match(/^\/compounds\/(\d+)/) || [])[1] || "";
    return put({ key: uuid(), user: me, kind: "scan", url: "/sync/presence", fields: fields, photos: [],
      compound: compound, created: new Date().toISOString(),
      label: t("scan", "QR scan") + " · " + compoundName, state: "waiting", attempts: 0 }).then(render);
  }

  // An item page that says "scan the gate first" (#scan-first): with a scan waiting in the
  // outbox the check can go ahead; on a page just made by the server, without one, the
  // check buttons wait for a scan instead of refusing a filled-in form at the end. A kept
  // copy (no signal, or a slow one the worker gave up on) cannot know about a scan made
  // since, so it leaves the server to decide.
  var FRESH_PAGE = 120000;
  function gateScanFirst() {
    var note = document.getElementById("scan-first");
    if (!note || !window.indexedDB) return Promise.resolve();
    return all().then(function (list) {
      var within = Number(note.dataset.window) * 60000;
      var waiting = list.some(function (r) {
        return r.user === me && r.kind === "scan" && r.compound === note.dataset.compound &&
          Date.now() - Date.parse(r.created) < within;
      });
      if (waiting) { note.hidden = true; return; }
      var age = Date.now() - Number(note.dataset.at) * 1000;
      if (!navigator.onLine || !(Math.abs(age) < FRESH_PAGE)) return;
      document.querySelectorAll("#act-verify form, #act-reopen form").forEach(function (form) {
        var button = form.querySelector("button.btn");
        if (!button) return;
        button.disabled = true;
        var why = note.cloneNode(true);
        why.removeAttribute("id");
        why.className += " needs-scan";
        form.insertBefore(why, button);
      });
    });
  }

  window.PatrolQueue = { submit: submit, sync: sync, all: all, discard: discard };
  gateScanFirst();

  // --- wiring -----------------------------------------------------------------------
  if (bar) {
    bar.querySelector("button.sync").addEventListener("click", function () { sync(true); });
  }
  window.addEventListener("online", function () { sync(true); });
  setInterval(function () { if (navigator.onLine) sync(false); }, PERIOD);

  // A kept copy of a report page carries the key it was saved with: give every
  // opening of the form its own idempotency key.
  document.querySelectorAll("input[name=client_uuid]").forEach(function (input) {
    input.value = uuid();
  });

  // A scan opened from the kept copy of the page, without signal.
  var params = new URLSearchParams(location.search);
  var offlineScan = params.get("offline_scan");
  if (offlineScan && me) {  // a scan belongs to someone: never queue one for nobody
    var h1 = document.querySelector("h1");
    queueScan(offlineScan, h1 ? h1.textContent : "").then(function () {
      params.delete("offline_scan");
      history.replaceState(null, "", location.pathname + (params.toString() ? "?" + params : ""));
      var note = document.getElementById("offline-scan");
      if (note) note.hidden = false;
    });
  }

  if ("serviceWorker" in navigator && me) {
    navigator.serviceWorker.register("/sw.js").then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (reg) {
      if (navigator.onLine && reg.active) reg.active.postMessage({ type: "precache", user: me });
    }).catch(function () { /* no service worker: pages need signal, the outbox still works */ });
  }
  // The sign-in page means this browser's sign-in has ended (expired, revoked as a lost
  // phone, or signed out): pages kept for offline use show names and problems, so they go.
  // The outbox stays; its records wait for their owner.
  if (!me && location.pathname === "/login" && navigator.serviceWorker &&
      navigator.serviceWorker.controller) {
    navigator.serviceWorker.controller.postMessage({ type: "forget" });
  }
  document.querySelectorAll("form.signout").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (e.defaultPrevented) return;  // "cancel" in the confirm dialog (app.js runs first)
      if (navigator.serviceWorker && navigator.serviceWorker.controller) {
        navigator.serviceWorker.controller.postMessage({ type: "forget" });
      }
    });
  });
  render();
  if (navigator.onLine) sync(true);
})();
