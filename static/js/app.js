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

  // A scan records presence on the server; add the location if the user allows it.
  var presence = document.querySelector("[data-presence]");
  if (presence && navigator.geolocation) {
    navigator.geolocation.getCurrentPosition(function (pos) {
      var body = new FormData();
      body.append("lat", pos.coords.latitude);
      body.append("lon", pos.coords.longitude);
      body.append("accuracy", pos.coords.accuracy);
      body.append("csrf_token", csrf());
      fetch(presence.dataset.presence, { method: "POST", body: body, credentials: "same-origin" });
    }, function () {}, { timeout: 15000, maximumAge: 60000 });
  }

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

  // Report form: attach the location to photos when allowed.
  var form = document.getElementById("report-form");
  if (form && navigator.geolocation) {
    navigator.geolocation.getCurrentPosition(function (pos) {
      form.elements.lat.value = pos.coords.latitude.toFixed(6);
      form.elements.lon.value = pos.coords.longitude.toFixed(6);
    }, function () {}, { timeout: 15000, maximumAge: 300000 });
  }
})();
