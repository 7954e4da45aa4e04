// The import page: a file over the upload limit is refused here, before it is sent
// (the server answers 413 too, but a phone may only show a broken connection).
(function () {
  "use strict";
  document.querySelectorAll("#import-form").forEach(function (form) {
    var input = form.querySelector("input[type=file]");
    var message = form.querySelector("#import-too-large");
    var max = parseInt(form.dataset.max, 10) || 0;
    function tooLarge() {
      var file = input.files && input.files[0];
      return max > 0 && file && file.size > max;
    }
    input.addEventListener("change", function () {
      message.hidden = !tooLarge();
      message.textContent = tooLarge() ? form.dataset.tooLarge : "";
    });
    form.addEventListener("submit", function (e) {
      if (tooLarge()) {
        e.preventDefault();
        message.textContent = form.dataset.tooLarge;
        message.hidden = false;
      }
    });
  });
})();
