/* Small progressive enhancements; every page works without them. Photos: photos.js. */
(function () {
  "use strict";
  var csrf = function () {
    var el = document.querySelector("input[name=csrf_token]");
    return el ? el.value : "";
  };

  // A page kept for offline use may carry a message from when it was kept: drop old ones.
  document.querySelectorAll(".flash[data-at]").forEach(function (el) {
    if (Date.now() / 1000 - Number(el.dataset.at) > 300) el.remove();
  });

  // Show the after-photo box when "fixed on the spot" is ticked.
  document.querySelectorAll("input.toggle").forEach(function (box) {
    var target = document.getElementById(box.dataset.target);
    box.addEventListener("change", function () { target.hidden = !box.checked; });
  });

  // Confirm destructive forms.
  document.querySelectorAll("form.confirm").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  });

  // A scan (gate or checkpoint) records presence on the server; add the location if the
  // user allows it.
  var presences = document.querySelectorAll("[data-presence]");
  if (presences.length && navigator.geolocation) {
    navigator.geolocation.getCurrentPosition(function (pos) {
      presences.forEach(function (el) {
        var body = new FormData();
        body.append("lat", pos.coords.latitude);
        body.append("lon", pos.coords.longitude);
        body.append("accuracy", pos.coords.accuracy);
        body.append("csrf_token", csrf());
        fetch(el.dataset.presence, { method: "POST", body: body, credentials: "same-origin" });
      });
    }, function () {}, { timeout: 15000, maximumAge: 60000 });
  }

  // 发现问题 N 条: − and ＋ beside the number, so nobody has to type it.
  document.querySelectorAll(".stepper").forEach(function (box) {
    var input = box.querySelector("input");
    box.querySelectorAll("button[data-step]").forEach(function (b) {
      b.addEventListener("click", function () {
        input.value = Math.min(999, Math.max(0, (parseInt(input.value, 10) || 0) + Number(b.dataset.step)));
      });
    });
  });

  // "Copy link" (the invite page): the clipboard where the browser offers one; else the
  // text is selected, for the user's own long press and Copy (older WeChat WebViews).
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.dataset.copy);
    var status = document.getElementById("copy-status");
    if (!field) return;
    button.hidden = false;
    function say(text, ok) {
      if (!status) return;
      status.textContent = text;
      status.className = ok ? "flash ok" : "hint";
      status.hidden = false;
    }
    function select() {
      field.focus();
      field.select();
      field.setSelectionRange(0, field.value.length);  // iOS ignores select() alone
    }
    function byHand() {
      select();
      var copied = false;
      try { copied = document.execCommand("copy"); } catch (e) { /* not allowed here */ }
      if (copied) say(button.dataset.copied, true);
      else say(button.dataset.manual, false);
    }
    button.addEventListener("click", function () {
      if (navigator.clipboard && navigator.clipboard.writeText && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(function () {
          select();
          say(button.dataset.copied, true);
        }, byHand);
      } else {
        byHand();
      }
    });
  });

  // 是同一个问题吗？ The report page carries the compound's open items (#open-items), so
  // this works without signal too. "Same problem" sends this very form (photos, note) as
  // a supporting report of that item, through the outbox like any report.
  var dups = document.getElementById("dups"), openItems = document.getElementById("open-items");
  var reportForm = document.getElementById("report-form");
  if (reportForm && dups && openItems && Element.prototype.closest) {
    var known = [];
    try { known = JSON.parse(openItems.textContent) || []; } catch (e) { /* none */ }
    var d = dups.dataset, ul = dups.querySelector("ul"), dismissed = "";
    var anchor = document.getElementById("f-" + d.building) || document.getElementById("f-" + d.category);
    if (anchor) anchor.parentNode.insertBefore(dups, anchor.nextSibling);
    var original = { action: reportForm.getAttribute("action"), label: reportForm.dataset.label,
      kind: reportForm.dataset.kind };
    var value = function (name) {
      var el = reportForm.querySelector("input[name='" + name + "']:checked, select[name='" + name + "']");
      return el ? el.value : "";
    };
    var asNew = function () {
      if (original.action) reportForm.setAttribute("action", original.action);
      else reportForm.removeAttribute("action");
      reportForm.dataset.label = original.label;
      reportForm.dataset.kind = original.kind;
      reportForm.noValidate = false;
      reportForm.querySelectorAll("input.photo-input").forEach(function (input) {
        if (input.dataset.minWas) input.dataset.min = input.dataset.minWas;
      });
    };
    var same = function (item) {
      reportForm.setAttribute("action", "/items/" + item.id + "/support");
      reportForm.dataset.label = d.label.replace("{id}", item.id);
      reportForm.dataset.kind = "support";
      reportForm.noValidate = true;    // photos and note are welcome, not required
      reportForm.querySelectorAll("input.photo-input").forEach(function (input) {
        input.dataset.minWas = input.dataset.minWas || input.dataset.min || "0";
        input.dataset.min = "0";
      });
      var spot = reportForm.querySelector("input[name=fixed_on_spot]");
      if (spot && spot.checked) { spot.checked = false; spot.dispatchEvent(new Event("change")); }
      if (reportForm.requestSubmit) reportForm.requestSubmit();
      else reportForm.querySelector("button[type=submit]").click();
    };
    var show = function () {
      var cat = value(d.category), building = value(d.building), key = cat + "/" + building;
      var found = !cat || key === dismissed ? [] : known.filter(function (i) {
        return i.category === cat && (!building || !i.building || String(i.building) === building);
      });
      ul.textContent = "";
      found.slice(0, 8).forEach(function (item) {
        var li = document.createElement("li"), pic = document.createElement(item.thumb ? "img" : "span");
        pic.className = "thumb";
        if (item.thumb) { pic.src = item.thumb; pic.alt = ""; } else { pic.textContent = "?"; }
        var text = document.createElement("span");
        text.textContent = d.no.replace("{id}", item.id) + " · " + item.status +
          (item.reports > 1 ? " · " + d.reports.replace("{n}", item.reports) : "");
        var button = document.createElement("button");
        button.type = "button";
        button.className = "btn primary";
        button.dataset.item = item.id;
        button.textContent = d.same;
        button.addEventListener("click", function () { same(item); });
        li.appendChild(pic);
        li.appendChild(text);
        li.appendChild(button);
        ul.appendChild(li);
      });
      dups.hidden = found.length === 0;
    };
    document.getElementById("dups-no").addEventListener("click", function () {
      dismissed = value(d.category) + "/" + value(d.building);
      asNew();
      show();
    });
    reportForm.addEventListener("change", function (e) {
      if (e.target.name === d.category || e.target.name === d.building) show();
    });
    show();
  }

  // Report form: attach the location to photos when allowed.
  var form = document.getElementById("report-form");
  if (form && navigator.geolocation) {
    navigator.geolocation.getCurrentPosition(function (pos) {
      form.elements.lat.value = pos.coords.latitude.toFixed(6);
      form.elements.lon.value = pos.coords.longitude.toFixed(6);
    }, function () {}, { timeout: 15000, maximumAge: 300000 });
  }
})();
