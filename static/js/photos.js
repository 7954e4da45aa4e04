/* Photos: shrink in the browser, upload one by one with progress, never lose a form.
 *
 * Each chosen photo is downscaled (long edge 1600 px, EXIF orientation applied) and
 * encoded as JPEG to a byte budget: quality 0.8, stepped down while the file is over
 * BUDGET, never below FLOOR (docs/offline.md, "Photo size"). It is uploaded the moment
 * it is taken, to /photos, which returns an id. The form then
 * carries only ids (kept_<field>), so a failed submit or a retry sends no photo
 * twice. Without this script the form still posts the original files.
 */
(function () {
  "use strict";
  // On a 400 kbps uplink 250 KB is about 5 s. An ordinary photo fits at 0.8 or 0.7; a
  // detailed or grainy scene steps down to 0.5 at the lowest, and may then stay larger:
  // below 0.5 blocking starts to hide what the photo is evidence of (a label, a wire).
  var LONG_EDGE = 1600, QUALITY = 0.8, BUDGET = 250000, FLOOR = 0.5, STEP = 0.1;
  var T = {};
  try { T = JSON.parse(document.body.dataset.t || "{}"); } catch (e) { /* English fallbacks */ }
  var t = function (key, fallback) { return T[key] || fallback; };

  // A link that is up but passes no data must not leave "Sending…" waiting for ever: an
  // upload with no progress (and no answer) for `idle` ms, or longer than `total` in all,
  // is given up, and the report goes to the outbox as without signal. Tests set
  // window.PatrolTimeouts = {idle: ms, total: ms} before the page's scripts run.
  function limits() {
    var o = window.PatrolTimeouts || {};
    return { idle: o.idle || 20000, total: o.total || 120000 };
  }

  function csrf(form) {
    var el = form.querySelector("input[name=csrf_token]");
    return el ? el.value : "";
  }

  // A 2×1 JPEG whose EXIF says "turn 90°" (orientation 6): it decodes as 1×2 where the
  // browser applies EXIF orientation by itself.
  var EXIF6 = "/9j/4AAQSkZJRgABAQAAAQABAAD/4QAiRXhpZgAATU0AKgAAAAgAAQESAAMAAAABAAYAAAAAAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAABAAIDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDFoooryz7w/9k=";
  var plainApplies = null;
  function plainAppliesExif() {
    if (!plainApplies) {
      var bytes = Uint8Array.from(atob(EXIF6), function (c) { return c.charCodeAt(0); });
      plainApplies = createImageBitmap(new Blob([bytes], { type: "image/jpeg" }))
        .then(function (bmp) {
          var yes = bmp.width === 1 && bmp.height === 2;
          if (bmp.close) bmp.close();
          return yes;
        }, function () { return false; });
    }
    return plainApplies;
  }

  function decode(file) {
    // "from-image" applies EXIF orientation; engines before it existed (Chromium < 112,
    // so many WeChat and Android WebViews; Safari < 16) reject the option. Those that
    // apply EXIF anyway (asked once, above) decode without it; the others would draw the
    // photo sideways, and the canvas would drop the EXIF that says so: then the original
    // is sent, and the server turns it upright.
    return createImageBitmap(file, { imageOrientation: "from-image" }).catch(function () {
      return plainAppliesExif().then(function (yes) {
        if (!yes) throw new Error("this browser cannot apply EXIF orientation");
        return createImageBitmap(file);
      });
    });
  }

  function encode(canvas, quality) {
    return new Promise(function (resolve) {
      canvas.toBlob(function (blob) { resolve(blob); }, "image/jpeg", quality);
    });
  }

  // The highest quality on the 0.1 steps from QUALITY down to FLOOR whose file fits the
  // budget, else FLOOR. After the first encode the next try is guessed from its size (a
  // step saves at most ~30%, so the guess never skips a step that would have fitted), then
  // one step at a time: two or three encodes for a grainy photo instead of four.
  function toBudget(canvas) {
    var tries = [];
    function at(q) {
      q = Math.max(FLOOR, Math.round(q * 10) / 10);
      return encode(canvas, q).then(function (blob) {
        tries.push(q);
        if (!blob || blob.size <= BUDGET || q <= FLOOR) return { blob: blob, quality: q, tries: tries };
        var steps = Math.max(1, Math.floor(Math.log(BUDGET / blob.size) / Math.log(0.7)));
        return at(q - steps * STEP);
      });
    }
    return at(QUALITY);
  }

  function shrink(file) {
    if (!window.createImageBitmap || !HTMLCanvasElement.prototype.toBlob) {
      return Promise.resolve(file);
    }
    return decode(file).then(function (bmp) {
      var s = Math.min(1, LONG_EDGE / Math.max(bmp.width, bmp.height));
      var canvas = document.createElement("canvas");
      var width = canvas.width = Math.round(bmp.width * s);
      var height = canvas.height = Math.round(bmp.height * s);
      var ctx = canvas.getContext("2d");
      // A filtered downscale (not the default bilinear one) averages a 12 MP sensor's grain
      // away instead of sampling it: a third fewer bytes at the same quality, and sharper.
      ctx.imageSmoothingQuality = "high";
      ctx.drawImage(bmp, 0, 0, canvas.width, canvas.height);
      if (bmp.close) bmp.close();
      return toBudget(canvas).then(function (out) {
        canvas.width = canvas.height = 0; // iOS caps canvas memory: release at once
        var blob = out.blob;
        if (!blob || blob.size >= file.size) return file;
        shrink.last = { quality: out.quality, tries: out.tries, bytes: blob.size,
          width: width, height: height };
        return blob;
      });
    }).catch(function () { return file; }); // e.g. HEIC in Chrome: the server converts it
  }
  shrink.budget = BUDGET;
  shrink.floor = FLOOR;

  function PhotoField(input) {
    this.input = input;
    this.form = input.form;
    this.name = "kept_" + input.name;
    this.kind = input.dataset.kind || "before";
    this.max = parseInt(input.dataset.max || "4", 10);
    this.box = input.closest("label").nextElementSibling;
    this.entries = [];
    var self = this;
    // Photos the server already holds (after an error page) become entries too.
    Array.prototype.forEach.call(this.form.querySelectorAll("input[name='" + this.name + "']"),
      function (hidden) {
        var span = hidden.parentNode;
        var img = span.querySelector("img");
        self.box.appendChild(span);
        self.entries.push({ id: hidden.value, state: "done", el: span });
        self.decorate(self.entries[self.entries.length - 1], img && img.src);
      });
    input.addEventListener("change", function () {
      Array.prototype.forEach.call(input.files, function (file) { self.add(file); });
      input.value = ""; // the originals are never posted with the form
    });
  }

  PhotoField.prototype.live = function () {  // photos that will go with the form
    return this.entries.filter(function (e) { return e.state !== "removed" && e.state !== "rejected"; });
  };

  PhotoField.prototype.decorate = function (entry, src) {
    var self = this, el = entry.el;
    el.classList.add("photo");
    if (!el.querySelector("img")) {
      var img = document.createElement("img");
      img.alt = "";
      img.src = src;
      el.appendChild(img);
    }
    var bar = document.createElement("progress");
    bar.max = 1;
    bar.value = entry.state === "done" ? 1 : 0;
    el.appendChild(bar);
    var msg = document.createElement("span");
    msg.className = "msg";
    el.appendChild(msg);
    var remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "×";
    remove.setAttribute("aria-label", t("remove", "Remove"));
    remove.addEventListener("click", function () {
      entry.state = "removed";
      if (entry.xhr) entry.xhr.abort();
      el.remove();
    });
    el.appendChild(remove);
    entry.bar = bar;
    entry.msg = msg;
  };

  PhotoField.prototype.add = function (file) {
    if (this.live().length >= this.max) {
      window.alert(t("tooMany", "Too many photos."));
      return;
    }
    var entry = { file: file, state: "shrinking", el: document.createElement("span") };
    this.entries.push(entry);
    this.form.dispatchEvent(new CustomEvent("patrol:photo-added"));
    this.box.appendChild(entry.el);
    var preview = URL.createObjectURL(file);
    this.decorate(entry, preview);
    entry.el.querySelector("img").onload = function () { URL.revokeObjectURL(preview); };
    var self = this;
    entry.ready = shrink(file).then(function (blob) {
      entry.blob = blob;
      return self.send(entry);
    });
  };

  PhotoField.prototype.send = function (entry) {
    var self = this;
    if (entry.state === "removed" || entry.state === "done") return Promise.resolve();
    entry.state = "uploading";
    entry.timedOut = false;
    entry.el.classList.remove("failed");
    entry.msg.textContent = "";
    return new Promise(function (resolve) {
      var body = new FormData();
      body.append("photo", entry.blob, "photo.jpg");
      body.append("kind", self.kind);
      body.append("csrf_token", csrf(self.form));
      ["lat", "lon"].forEach(function (k) {
        if (self.form.elements[k] && self.form.elements[k].value) body.append(k, self.form.elements[k].value);
      });
      var xhr = new XMLHttpRequest(), lim = limits(), idle = null, cap = null, over = false;
      entry.xhr = xhr;
      function stop() { over = true; clearTimeout(idle); clearTimeout(cap); }
      function giveUp() {
        if (over) return;
        stop();
        entry.timedOut = true;
        xhr.abort();
        self.failed(entry);
        resolve();
      }
      function alive() {
        if (over) return;
        clearTimeout(idle);
        idle = setTimeout(giveUp, lim.idle);
      }
      xhr.open("POST", "/photos");
      xhr.upload.onprogress = function (e) {
        alive();
        if (e.lengthComputable) entry.bar.value = e.loaded / e.total;
      };
      xhr.onprogress = xhr.onreadystatechange = alive;
      xhr.onload = function () {
        if (over) return;
        stop();
        var data = {};
        try { data = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        if (xhr.status === 201 && data.id) {
          entry.state = "done";
          entry.id = data.id;
          entry.bar.value = 1;
          var hidden = document.createElement("input");
          hidden.type = "hidden";
          hidden.name = self.name;
          hidden.value = data.id;
          entry.el.appendChild(hidden);
        } else if (xhr.status === 400 && data.code === "csrf" && !entry.renewed &&
                   window.PatrolQueue && window.PatrolQueue.refresh) {
          // The page's token is refused (a kept page of an older session): one fresh
          // token (offline.js puts it in the form), one more try.
          entry.renewed = true;
          entry.state = "failed";
          window.PatrolQueue.refresh().then(function () { return self.send(entry); }, function () {
            self.failed(entry);
          }).then(resolve);
          return;
        } else if (xhr.status === 422 || xhr.status === 413) {
          entry.state = "rejected"; // a bad file: say why, don't retry
          entry.el.classList.add("failed");
          entry.bar.hidden = true;     // a full bar would look like success
          entry.msg.textContent = (data.error || t("rejected", "This photo cannot be used.")) +
            " " + t("retake", "Take another photo.");
        } else {
          self.failed(entry);
        }
        resolve();
      };
      xhr.onerror = function () {
        if (over) return;
        stop();
        self.failed(entry);
        resolve();
      };
      xhr.onabort = function () { if (!over) { stop(); resolve(); } };  // removed by the user
      cap = setTimeout(giveUp, lim.total);
      alive();
      xhr.send(body);
    });
  };

  PhotoField.prototype.failed = function (entry) {
    entry.state = "failed";
    entry.el.classList.add("failed");
    entry.msg.textContent = t("retry", "Not sent yet");
  };

  // Wait until each photo has been shrunk and had one upload attempt.
  PhotoField.prototype.settle = function () {
    return Promise.all(this.entries.map(function (e) { return e.ready || null; }));
  };

  // Retry failed uploads; true when every photo is stored on the server.
  PhotoField.prototype.flush = function () {
    var self = this;
    return this.settle().then(function () {
      return Promise.all(self.entries.map(function (e) { return e.state === "failed" ? self.send(e) : null; }));
    }).then(function () {
      return self.entries.every(function (e) { return e.state !== "failed" && e.state !== "uploading"; });
    });
  };

  function missingPhotos(fields) {
    return fields.filter(function (f) {
      var min = parseInt(f.input.dataset.min || "0", 10);
      return !f.input.closest("[hidden]") && f.live().length < min;
    });
  }

  function guard(form, fields) {
    var note = document.createElement("p");
    note.className = "error";
    note.hidden = true;
    note.setAttribute("role", "alert");
    var button = form.querySelector("button[type=submit], button:not([type])");
    button.parentNode.insertBefore(note, button);
    // The page (offline.js) places its own notices around this one.
    function told() { form.dispatchEvent(new CustomEvent("patrol:message", { bubbles: true })); }
    function say(text) { note.textContent = text; note.hidden = false; told(); }
    function quiet() { if (!note.hidden) { note.hidden = true; told(); } }
    // "Please take a photo" goes once the photo is there.
    form.addEventListener("patrol:photo-added", function () {
      if (!missingPhotos(fields).length) quiet();
    });
    form.addEventListener("submit", function (e) {
      if (form.dataset.ready) return;
      e.preventDefault();
      quiet();
      var missing = missingPhotos(fields);
      if (missing.length) {
        say(t("needPhoto", "Please take a photo."));
        missing[0].input.closest("label").scrollIntoView({ block: "center" });
        return;
      }
      var label = button.textContent;
      button.disabled = true;
      button.textContent = t("sending", "Sending…");
      var restore = function () { button.disabled = false; button.textContent = label; };
      Promise.all(fields.map(function (f) { return f.settle(); })).then(function () {
        if (!window.PatrolQueue) { // no IndexedDB: send directly, keeping the form on failure
          return Promise.all(fields.map(function (f) { return f.flush(); })).then(function (oks) {
            restore();
            if (oks.indexOf(false) !== -1) return say(t("offline", "Some photos could not be sent."));
            form.dataset.ready = "1";
            form.submit();
          });
        }
        // A photo whose upload just timed out: the link is up but passes nothing. Straight
        // to the outbox, as without signal, rather than a second wait for the same result.
        var stalled = fields.some(function (f) {
          return f.live().some(function (e) { return e.state === "failed" && e.timedOut; });
        });
        return window.PatrolQueue.submit(form, fields, { queueOnly: stalled }).then(function (res) {
          if (res.ok) { location.href = res.url || form.dataset.after; return; }
          restore();
          if (res.rejected) {
            // Refused (e.g. not on the spot): the form is still here, so drop the copy.
            window.PatrolQueue.discard(res.key);
            return say(res.error);
          }
          // No signal: it is safe on the phone and will go by itself.
          location.href = form.dataset.after || location.href;
        });
      }).catch(function (err) {
        if (window.console) console.error(err);
        restore();
        say(t("offline", "Could not save. Please try again."));
      });
    });
  }

  window.PatrolPhotos = { shrink: shrink }; // for bench/photos.py and the offline queue
  if (!window.FormData || !window.Promise || !Element.prototype.closest) return;
  document.querySelectorAll("form").forEach(function (form) {
    var inputs = form.querySelectorAll("input.photo-input");
    if (!inputs.length) return;
    var fields = Array.prototype.map.call(inputs, function (input) { return new PhotoField(input); });
    guard(form, fields);
  });
})();
