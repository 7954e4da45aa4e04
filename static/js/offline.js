/* The outbox: every report, check and offline scan is saved in IndexedDB first, then sent.
 *
 * A record leaves the phone only after the server confirms it (2xx). Reports carry a
 * client UUID the server treats as an idempotency key, so a send whose answer was lost
 * can be repeated safely. It sends with the page's own CSRF token and fetches a fresh one
 * (/sync/token) only when the server refuses it, so hours offline never make a queued
 * form stale and a send on a good page costs no extra round trip. Sync runs on the `online` event, at page
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

  // --- the network ------------------------------------------------------------------
  // A link can be up and pass no data (a basement, a crowded cell): a request that hears
  // nothing for IDLE ms (no upload progress, no answer) is given up, as is one that takes
  // longer than TOTAL in all; the record then waits as if there were no signal. Tests set
  // window.PatrolTimeouts = {idle: ms, total: ms} before the page's scripts run.
  function limits() {
    var o = window.PatrolTimeouts || {};
    return { idle: o.idle || 20000, total: o.total || 120000 };
  }

  // Resolves (never rejects) with {wire: true, status, data}; status 0 when no answer came.
  function request(method, url, body, headers) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest(), lim = limits(), idle = null, cap = null, over = false;
      function end(status, data) {
        if (over) return;
        over = true;
        clearTimeout(idle);
        clearTimeout(cap);
        resolve({ wire: true, status: status, data: data || {} });
      }
      function giveUp() { end(0, { timeout: true }); xhr.abort(); }
      function alive() {
        if (over) return;
        clearTimeout(idle);
        idle = setTimeout(giveUp, lim.idle);
      }
      xhr.open(method, url);
      Object.keys(headers || {}).forEach(function (k) { xhr.setRequestHeader(k, headers[k]); });
      if (xhr.upload) xhr.upload.onprogress = alive;
      xhr.onprogress = alive;
      xhr.onreadystatechange = alive;
      xhr.onload = function () {
        var data = null;
        try { data = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        end(xhr.status, data && typeof data === "object" ? data : {});
      };
      xhr.onerror = xhr.onabort = function () { end(0, {}); };
      cap = setTimeout(giveUp, lim.total);
      alive();
      xhr.send(body || null);
    });
  }

  // --- the CSRF token ---------------------------------------------------------------
  // A send uses the token the page came with (the hidden field of every signed-in page):
  // no request before it, which on a 400 ms link is 0.4 s off every report. Only when the
  // server refuses it (400, code "csrf": the session changed since the page was made, e.g.
  // a kept page after WeChat dropped the session cookie, or a sign-in since) is a fresh one
  // fetched from /sync/token, once, and the request sent again. That answer also says who
  // is signed in now: a record goes only for the page's own user (`me`); under anyone else
  // it waits, untouched, for its owner. Every send also names the page's user
  // (X-Patrol-User), and the server refuses it, as a stale token, under another user.
  function pageToken() {
    var el = document.querySelector("input[name=csrf_token]");
    return el && el.value ? el.value : "";
  }
  var csrfNow = pageToken();
  var proven = false;   // the server has taken csrfNow (or just issued it) in this page

  // Resolves with a token for `me`; rejects {login}, {network} or {other} (someone else).
  function refresh() {
    return request("GET", "/sync/token").then(function (r) {
      if (r.status === 401) throw { login: true };
      if (r.status !== 200 || !r.data.csrf) throw { network: true };
      if (String(r.data.user) !== me) throw { other: true };
      csrfNow = r.data.csrf;
      proven = true;
      // The page's own forms (sign out, language, a report sent without this queue) too.
      document.querySelectorAll("input[name=csrf_token]").forEach(function (el) { el.value = csrfNow; });
      return csrfNow;
    });
  }

  function refused(res) { return res.status === 400 && res.data.code === "csrf"; }

  // A POST for `me`, as request() answers it. Throws {other: true} when someone else is
  // signed in: nothing of this user's may be sent then.
  function post(url, body, type) {
    function send(csrf) {
      var headers = { "X-CSRFToken": csrf, "X-Patrol-Sync": "1", "X-Patrol-User": me };
      if (type) headers["Content-Type"] = type;
      return request("POST", url, body, headers);
    }
    var first = csrfNow ? send(csrfNow) : Promise.resolve(null);
    return first.then(function (res) {
      if (res && res.status && !refused(res)) proven = true;
      if (res && !refused(res)) return res;
      return refresh().then(send, function (err) {
        if (err && err.other) throw err;
        if (err && err.login) return { wire: true, status: 401, data: { login: true } };
        return res || { wire: true, status: 0, data: {} };  // no answer: try again later
      });
    });
  }

  // --- one sender per record --------------------------------------------------------
  // Two tabs, or a submit racing the background sync, must not send the same record at
  // once. A sender takes a Web Lock named after the record (navigator.locks); where there
  // is none (older iOS, some in-app browsers) it takes a lease written in the record
  // itself, in one IndexedDB transaction, so only one sender can win. A lease outlives
  // any one request (each is capped, see limits) and is renewed at each step; a tab that
  // died mid-send leaves a lease that simply runs out.
  function leaseMs() { return limits().total + 60000; }

  // Read-modify-write in one transaction: change(current) returns the record to store,
  // or nothing to leave it as it is. Resolves with what was stored, or null.
  function update(key, change) {
    return dbp.then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction("outbox", "readwrite"), s = tx.objectStore("outbox"), out = null;
        var req = s.get(key);
        req.onsuccess = function () {
          out = change(req.result) || null;
          if (out) s.put(out);
        };
        tx.oncomplete = function () { resolve(out); };
        tx.onerror = tx.onabort = function () { reject(tx.error); };
      });
    });
  }

  function claim(key, locked, opts) {
    var holder = uuid(), now = Date.now();
    return update(key, function (cur) {
      if (!cur || cur.user !== me) return null;                      // gone: sent by another
      if (cur.state === "rejected" && !(opts.manual && cur.fault)) return null;
      if (!locked && cur.state === "sending" && cur.lease > now) return null;  // being sent
      if (!opts.force && cur.next > now) return null;
      cur.state = "sending";
      cur.by = holder;
      cur.lease = now + leaseMs();
      return cur;
    });
  }

  // Store our copy of a record we hold; {lost: true} if another sender took it over.
  function save(rec) {
    if (rec.state === "sending") rec.lease = Date.now() + leaseMs();
    return update(rec.key, function (cur) {
      return cur && cur.by === rec.by ? rec : null;
    }).then(function (stored) {
      if (!stored) throw { lost: true };
      return stored;
    });
  }

  // Send one record if no other sender has it: {ok, …} or {busy: true}.
  function sendKey(key, opts) {
    function go(locked) {
      return claim(key, locked, opts || {}).then(function (rec) {
        return rec ? sendOne(rec) : { ok: false, busy: true };
      }, function (err) { return { ok: false, error: String(err) }; });
    }
    if (!navigator.locks || !navigator.locks.request) return go(false);
    var ran = false;
    return navigator.locks.request("patrol-outbox:" + key, { ifAvailable: true }, function (lock) {
      ran = true;
      return lock ? go(true) : { ok: false, busy: true };
    }).catch(function (err) {
      if (ran) return { ok: false, error: String(err) };
      return go(false);  // the lock manager itself failed (e.g. an opaque origin)
    });
  }

  // --- sending --------------------------------------------------------------------
  var running = null;
  var again = false; // a forced sync was asked for while one was running
  var againManual = false;
  var sentInRun = 0;  // records the background sync delivered, for the "N uploaded" note

  function field(rec, name) {
    for (var i = 0; i < rec.fields.length; i++) if (rec.fields[i][0] === name) return rec.fields[i][1];
    return "";
  }

  function sendPhotos(rec) {
    // Photos first, one by one; each stored id is saved so a retry never resends it.
    // The phone's location goes with each, as it does when a photo goes at once.
    var lat = field(rec, "lat"), lon = field(rec, "lon");
    return rec.photos.reduce(function (chain, photo) {
      return chain.then(function () {
        if (photo.id) return null;
        var body = new FormData();
        body.append("photo", photo.blob, "photo.jpg");
        body.append("kind", photo.kind || "before");
        if (lat && lon) { body.append("lat", lat); body.append("lon", lon); }
        return save(rec).then(function () { return post("/photos", body); }).then(function (res) {
          if (res.status === 201) {
            photo.id = res.data.id;
            delete photo.blob;
            return save(rec);
          }
          throw res;
        });
      });
    }, Promise.resolve());
  }

  // Line breaks as a multipart body carries them (the browser's multipart encoder makes
  // every one CRLF; URLSearchParams keeps them as they are): the server stores the same.
  function crlf(text) { return text.replace(/\r\n|\r|\n/g, "\r\n"); }
  var URLENCODED = "application/x-www-form-urlencoded;charset=UTF-8";

  function sendOne(rec) {
    render();
    return sendPhotos(rec).then(function () {
      // Only strings are left once the photos are up (their ids), so the form goes
      // urlencoded: the server parses that for a fraction of a multipart body's cost (it
      // takes both). Sent as a string with its type said, which every XMLHttpRequest
      // sends as it is (this file needs URLSearchParams already, see offline_scan below).
      var body = new URLSearchParams();
      function add(name, value) { body.append(crlf(name), crlf(String(value))); }
      rec.fields.forEach(function (kv) { add(kv[0], kv[1]); });
      rec.photos.forEach(function (p) { add(p.field, p.id); });
      add("sent_at", new Date().toISOString()); // lets the server correct our clock
      return save(rec).then(function () { return post(rec.url, body.toString(), URLENCODED); });
    }).then(function (res) {
      if (res.status >= 200 && res.status < 300) {
        return remove(rec.key).then(function () { return { ok: true, url: res.data.url }; });
      }
      throw res;
    }).catch(function (res) {
      if (res && res.lost) return { ok: false, busy: true };  // another sender has it now
      if (res && res.other) {
        // Someone else is signed in on this phone: not a failure of the record. It waits
        // as it was, for its owner, with no attempt counted.
        rec.state = "waiting";
        rec.lease = 0;
        var wait = { ok: false, other: true, status: 0 };
        return save(rec).then(function () { return wait; }, function () { return wait; });
      }
      var status = res && res.wire ? res.status : 0;
      rec.attempts = (rec.attempts || 0) + 1;
      rec.fault = false;
      if (!(res && res.wire)) {
        // Not the network, not the server: a bug, or a record this phone cannot read any
        // more. Retrying by itself would fail the same way for ever: the user decides
        // (立即上传 tries once more, or discard).
        if (window.console) console.error("outbox: record " + rec.key + " cannot be sent", res);
        rec.state = "rejected";
        rec.fault = true;
        rec.error = t("fault", rec.faultText || "This record could not be sent because of an error on this phone.") +
          " (" + String(res && res.message || res) + ")";
      } else if (status === 401) {
        rec.state = "login";
        rec.error = t("login", "Please sign in again.");
      } else if (status >= 400 && status < 500 && status !== 408 && status !== 429 &&
                 !res.data.retry) {
        rec.state = "rejected"; // the server said no: keep it, say why, don't retry
        rec.error = res.data.error || ("HTTP " + status);
      } else {
        rec.state = "waiting";
        rec.error = res.data.error || (status ? "HTTP " + status : t("noSignal", "No signal"));
        rec.next = Date.now() + Math.min(MAX_BACKOFF, 5000 * Math.pow(2, rec.attempts - 1));
      }
      rec.lease = 0;
      var out = { ok: false, status: status, error: rec.error,
        rejected: rec.state === "rejected" && !rec.fault, fault: rec.fault };
      return save(rec).then(function () { return out; }, function () { return out; });
    });
  }

  // What must reach the server before a record: on-the-spot checks (and fixes on the
  // spot) their scan; a report the patrol start or checkpoint it was made on (so it is
  // linked to the walk); a patrol's end everything of the walk before it.
  var WALK = ["patrol-start", "checkpoint"];
  function waitsFor(rec) {
    var spot = rec.kind === "act" || (Array.isArray(rec.fields) &&
      rec.fields.some(function (kv) { return kv[0] === "fixed_on_spot"; }));
    var kinds = spot ? ["scan"] : [];
    if (rec.kind === "report" || rec.kind === "support") kinds = kinds.concat(WALK);
    if (rec.kind === "patrol-end") kinds = ["scan", "report", "support"].concat(WALK);
    return kinds;
  }
  function needsScan(rec) { return waitsFor(rec).length > 0; }
  // An earlier record still to reach the server (one it refused never will: the server decides).
  function scanWaits(o, rec) {
    return o.user === me && waitsFor(rec).indexOf(o.kind) !== -1 && o.created <= rec.created &&
      o.key !== rec.key && !o.sent && o.state !== "rejected";
  }

  // force: ignore the back-off (the button, the `online` event, page start);
  // manual: the user tapped 立即上传, which also retries records that failed on the phone.
  function sync(force, manual) {
    // A tap during a run must not be lost: records that failed in this run would
    // otherwise sit out their backoff. Run once more, forced, when this one ends.
    if (running) {
      if (force) again = true;
      if (manual) againManual = true;
      return running;
    }
    running = all().then(function (list) {
      var now = Date.now();
      var mine = list.filter(function (r) { return r.user === me; });
      var due = mine.filter(function (r) {
        if (r.state === "rejected") return !!(manual && r.fault);
        return force || !r.next || r.next <= now;
      });
      if (!due.length) return null;
      // A refused token is found out only after the whole body has gone: before photos
      // queued earlier (perhaps on a kept page of an older session) go up in the
      // background, an unproven token is checked first. A report sent from the page while
      // the user waits skips this: its photo went up with the same token moments ago.
      var photos = due.some(function (r) { return (r.photos || []).some(function (p) { return !p.id; }); });
      return (proven || !photos ? Promise.resolve() : refresh()).then(function () {
        return sendAll(due, mine, force, manual);
      }, function (err) {
        if (!(err && err.login)) return null;  // no signal, or someone else's session: wait
        return Promise.all(due.map(function (r) {
          return update(r.key, function (cur) {
            if (!cur || cur.lease > Date.now()) return null;
            cur.state = "login";
            cur.error = t("login", "Please sign in again.");
            return cur;
          }).catch(function () { return null; });
        }));
      });
    }).then(finish, finish);
    return running;
  }

  function sendAll(due, mine, force, manual) {
    // One by one, oldest first; a failure does not hold up the records after it,
    // except that a check waits for any earlier scan still on the phone. Someone else
    // signed in (a kept page of another user) stops the run: nothing more is tried.
    var other = false;
    return due.reduce(function (chain, rec) {
      return chain.then(function () {
        if (other) return null;
        var scanFirst = needsScan(rec) && mine.some(function (o) { return scanWaits(o, rec); });
        if (scanFirst) return null;
        return sendKey(rec.key, { force: force, manual: manual }).then(function (res) {
          if (res.ok) { rec.sent = true; sentInRun += 1; }
          if (res.other) other = true;
        });
      }).catch(function (err) {  // one record's trouble never stops the others
        if (window.console) console.error("outbox:", err);
      });
    }, Promise.resolve());
  }

  function finish() {
    running = null;
    render();
    if (sentInRun) { announce(sentInRun); sentInRun = 0; }
    if (again) {
      var manual = againManual;
      again = againManual = false;
      return sync(true, manual);
    }
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
        // "sending" whose sender went away (a closed tab) without a word: it waits.
        var state = r.state === "sending" && !(r.lease > Date.now()) ? "waiting" : r.state;
        li.className = "q-" + state;
        // A record the phone itself could not send says so in its message (no "refused":
        // the server never saw it).
        li.textContent = r.label + (r.fault ? "" : " · " + t("state_" + state, state)) +
          (r.error ? " · " + r.error : "");
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
  // opts.queueOnly: the link just stalled (a photo upload timed out): keep it for the
  // background sync, as without signal, instead of making the user wait once more.
  function submit(form, photoFields, opts) {
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
    var url = form.getAttribute("action") || location.pathname;
    var rec = { key: uuid(), user: me, kind: form.dataset.kind || "form", url: url,
      fields: fields, photos: photos, created: now, label: label(form), state: "waiting", attempts: 0,
      faultText: form.dataset.fault || "", compound: form.dataset.compound || compoundOf(url) };
    return put(rec).then(render).then(function () {
      if (!navigator.onLine || (opts && opts.queueOnly)) return { ok: false, queued: true };
      if (needsScan(rec)) return sendAfterScans(rec);
      return sendKey(rec.key, { force: true });
    }).then(function (res) {
      res.key = rec.key;
      render();
      return res;
    });
  }

  // A check goes after any scan still on the phone, so it goes through the sync (which
  // keeps that order); the answer is read from what the sync left.
  function sendAfterScans(rec) {
    return all().then(function (list) {
      var scans = list.some(function (o) { return scanWaits(o, rec); });
      if (!scans && !running) return sendKey(rec.key, { force: true });
      return sync(true).then(function () {  // a run under way runs once more, forced
        return store("readonly").then(function (s) { return done(s.get(rec.key)); });
      }).then(function (left) {
        if (!left) return { ok: true, url: "" };
        return { ok: false, status: 0, error: left.error, rejected: left.state === "rejected" && !left.fault,
          fault: !!left.fault };
      });
    });
  }

  function discard(key) { return remove(key).then(render); }

  function compoundOf(path) { return (String(path).match(/^\/compounds\/(\d+)/) || [])[1] || ""; }

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
      var gated = [];
      document.querySelectorAll("#act-verify, #act-reopen").forEach(function (details) {
        var button = details.querySelector("form button.btn");
        if (!button) return;
        button.disabled = true;
        gated.push(details);
      });
      showOnce(note, gated);
    });
  }

  // The notice is said once: above the buttons, or, while a check form is open, inside
  // it next to its disabled button. A form that shows an error (the server refused it)
  // says what is wrong itself, so the notice goes back above the buttons rather than
  // stacking under the error.
  function showOnce(note, gated) {
    if (!gated.length) return;
    var home = document.createComment("scan-first");
    note.parentNode.insertBefore(home, note);
    var refused = document.getElementById("action-error");  // the open form was refused
    var last = null;
    function hasError(details) {
      if (refused && details.dataset.openedRefused) return true;
      return Array.prototype.some.call(details.querySelectorAll("form .error"), function (e) {
        return !e.hidden && e.textContent.trim() !== "" && !e.closest("[hidden]");
      });
    }
    function place() {
      var open = gated.filter(function (d) { return d.open && !hasError(d); });
      var target = open.indexOf(last) !== -1 ? last : open[0];
      if (target) {
        var button = target.querySelector("form button.btn");
        if (note.nextSibling !== button) button.parentNode.insertBefore(note, button);
        note.classList.add("needs-scan");
      } else {
        if (home.nextSibling !== note) home.parentNode.insertBefore(note, home.nextSibling);
        note.classList.remove("needs-scan");
      }
    }
    gated.forEach(function (details) {
      if (refused && details.open) details.dataset.openedRefused = "1";
      details.addEventListener("toggle", function () {
        if (details.open) last = details;
        place();
      });
      // photos.js says when a form's message appears or goes.
      details.addEventListener("patrol:message", function () {
        delete details.dataset.openedRefused;  // a new attempt: the old refusal is history
        place();
      });
    });
    place();
  }

  // --- patrols (巡查): start, checkpoint stickers, end ---------------------------------
  // A checkpoint sticker scanned without signal (sw.js sends /k/<token> to the kept page):
  // saved first, then given the phone's location when it has one (GPS needs no signal).
  function queueCheckpoint(token, compoundName) {
    var key = uuid(), now = new Date().toISOString();
    var rec = { key: key, user: me, kind: "checkpoint", url: "/sync/checkpoint",
      fields: [["token", token], ["device_at", now], ["client_uuid", uuid()]], photos: [],
      compound: compoundOf(location.pathname), created: now,
      label: t("checkpoint", "Checkpoint scan") + " · " + compoundName, state: "waiting", attempts: 0 };
    return put(rec).then(render).then(function () {
      if (!navigator.geolocation) return;
      navigator.geolocation.getCurrentPosition(function (pos) {
        update(key, function (cur) {
          if (!cur || cur.state !== "waiting" || cur.fields.some(function (kv) { return kv[0] === "lat"; })) return null;
          cur.fields.push(["lat", String(pos.coords.latitude)], ["lon", String(pos.coords.longitude)],
            ["accuracy", String(pos.coords.accuracy)]);
          return cur;
        }).catch(function () { /* the scan counts without a location */ });
      }, function () {}, { timeout: 10000, maximumAge: 60000 });
    });
  }

  function sha256(text) {
    if (!window.crypto || !crypto.subtle) return Promise.resolve("");
    return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)).then(function (buf) {
      return Array.prototype.map.call(new Uint8Array(buf), function (b) {
        return ("0" + b.toString(16)).slice(-2);
      }).join("");
    });
  }

  // The compound page shows what this phone still holds of a walk here: a start or a
  // checkpoint not uploaded yet means a patrol under way (the kept copy of the page was
  // made before it), ✓ on the checkpoints scanned, and an end already tapped.
  function patrolHere() {
    var box = document.getElementById("patrol");
    if (!box) return Promise.resolve();
    var cid = box.dataset.compound;
    return all().then(function (list) {
      var walk = list.filter(function (r) {
        return r.user === me && r.compound === cid && r.state !== "rejected" &&
          (WALK.indexOf(r.kind) !== -1 || r.kind === "patrol-end" || r.kind === "report");
      });
      var lastEnd = -1;
      walk.forEach(function (r, i) { if (r.kind === "patrol-end") lastEnd = i; });
      var open = walk.slice(lastEnd + 1);
      var endBox = document.getElementById("patrol-end");
      if (lastEnd !== -1 && !open.some(function (r) { return WALK.indexOf(r.kind) !== -1; })) {
        var form = document.getElementById("patrol-end-form");
        if (form) form.hidden = true;
        var ended = document.getElementById("patrol-ended-local");
        if (ended) ended.hidden = false;
      } else if (open.some(function (r) { return WALK.indexOf(r.kind) !== -1; })) {
        var start = document.getElementById("patrol-start-form");
        var local = document.getElementById("patrol-local");
        if (start && local) { start.hidden = true; local.hidden = false; }
        if (endBox) endBox.hidden = false;
        var found = document.getElementById("found-count");
        var reports = open.filter(function (r) { return r.kind === "report"; }).length;
        if (found && reports) found.value = Number(found.form.dataset.found || 0) + reports;
      }
      var tokens = open.filter(function (r) { return r.kind === "checkpoint"; }).map(function (r) {
        return field(r, "token");
      });
      return Promise.all(tokens.map(sha256)).then(function (digests) {
        var items = box.querySelectorAll("#checkpoints li");
        items.forEach(function (li) {
          if (digests.indexOf(li.dataset.k) !== -1 && !li.classList.contains("done")) {
            li.classList.add("done", "queued");
            li.querySelector(".mark").textContent = "✓";
          }
        });
        var n = box.querySelector("#cp-count .n");
        if (n) n.textContent = box.querySelectorAll("#checkpoints li.done").length;
      });
    });
  }

  // Start and end forms go through the outbox like reports: saved first, sent once (the
  // server knows the form's client_uuid, and an end sent twice changes nothing), with
  // the phone's time of the tap.
  document.querySelectorAll("form[data-kind=patrol-start], form[data-kind=patrol-end]").forEach(function (form) {
    form.querySelectorAll("button[name]").forEach(function (b) {
      b.addEventListener("click", function () { form.clicked = b; });
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (form.dataset.busy) return;
      form.dataset.busy = "1";
      var button = e.submitter || form.clicked;  // e.submitter: Safari before 15.4 lacks it
      var chosen = form.querySelector("input[type=hidden][name=summary]");
      if (button && button.name === "summary") {
        if (!chosen) {
          chosen = document.createElement("input");
          chosen.type = "hidden";
          chosen.name = "summary";
          form.appendChild(chosen);
        }
        chosen.value = button.value;
        form.dataset.label = form.dataset.label.split(" · ").slice(0, 2).join(" · ") + " · " +
          button.textContent.replace(/^\W+/, "").trim();
      }
      var buttons = form.querySelectorAll("button");
      buttons.forEach(function (b) { b.disabled = true; });
      submit(form, []).then(function (res) {
        if (res.ok) { location.href = res.url || location.pathname; return; }
        if (res.rejected) {
          discard(res.key);
          var note = form.querySelector("p.error") || document.createElement("p");
          note.className = "error";
          note.setAttribute("role", "alert");
          note.textContent = res.error;
          form.insertBefore(note, form.firstChild);
        }
        buttons.forEach(function (b) { b.disabled = false; });
        delete form.dataset.busy;
        if (!res.rejected) return patrolHere();   // kept on the phone: show it so
      }).catch(function (err) {
        if (window.console) console.error(err);
        buttons.forEach(function (b) { b.disabled = false; });
        delete form.dataset.busy;
      });
    });
  });

  window.PatrolQueue = { submit: submit, sync: sync, all: all, discard: discard, refresh: refresh };
  gateScanFirst();

  // --- wiring -----------------------------------------------------------------------
  if (bar) {
    // The user's own tap also retries a record that failed on the phone (see sendOne).
    bar.querySelector("button.sync").addEventListener("click", function () { sync(true, true); });
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
  var startup = Promise.resolve();  // what this page queues as it opens (tests wait on it)
  var h1 = document.querySelector("h1");
  if (offlineScan && me) {  // a scan belongs to someone: never queue one for nobody
    startup = queueScan(offlineScan, h1 ? h1.textContent : "").then(function () {
      params.delete("offline_scan");
      history.replaceState(null, "", location.pathname + (params.toString() ? "?" + params : ""));
      var note = document.getElementById("offline-scan");
      if (note) note.hidden = false;
    });
  }
  var offlineCheckpoint = params.get("offline_checkpoint");
  if (offlineCheckpoint && me) {
    startup = startup.then(function () {
      return queueCheckpoint(offlineCheckpoint, h1 ? h1.textContent : "");
    }).then(function () {
      params.delete("offline_checkpoint");
      history.replaceState(null, "", location.pathname + (params.toString() ? "?" + params : ""));
      var note = document.getElementById("offline-checkpoint");
      if (note) note.hidden = false;
    });
  }
  if (me) startup = startup.then(patrolHere);
  window.PatrolQueue.started = function () { return startup; };

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
