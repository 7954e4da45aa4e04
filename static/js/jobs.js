// A job's page (/jobs/<id>): ask its status every second and move the progress bar;
// show the download link when it is done, the error when it failed. No framework.
(function () {
  "use strict";
  var box = document.getElementById("job");
  if (!box || !window.fetch) return;
  var bar = document.getElementById("job-progress");
  var count = document.getElementById("job-count");
  var state = document.getElementById("job-state");
  var error = document.getElementById("job-error");
  var result = document.getElementById("job-result");
  var link = document.getElementById("job-download");
  function show(s) {
    bar.value = s.percent;
    bar.textContent = s.percent + "%";
    count.textContent = s.done + "/" + s.total;
    state.textContent = s.label;
    state.className = "job-state state-" + s.state;
    error.hidden = !s.error;
    error.textContent = s.error || "";
    if (s.result) { link.href = s.result; result.hidden = false; }
  }
  function poll() {
    fetch(box.dataset.status, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) return;
        show(s);
        if (s.state === "done" || s.state === "failed") {
          if (s.state !== box.dataset.state) window.location.reload();  // retry button, note
          return;
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  if (box.dataset.state === "queued" || box.dataset.state === "running") poll();
})();
