// Retain: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";
  // "/" focuses the search box of the page (the filter search on lists, else the top search).
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    var typing = target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
    if (typing) return;
    var boxes = document.querySelectorAll("[data-hotkey-search]");
    if (!boxes.length) return;
    event.preventDefault();
    boxes[0].focus();
    boxes[0].select();
  });
  // Escape closes an open dropdown (the organization switcher).
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.org-switcher[open]").forEach(function (d) {
      d.removeAttribute("open");
      d.querySelector("summary").focus();
    });
  });
  // After an inline log, put focus back on the summary box so the next note can be typed at once.
  document.addEventListener("htmx:afterSwap", function (event) {
    var form = event.detail.target && event.detail.target.querySelector("#log-activity");
    if (!form) return;
    var error = form.querySelector(".field-error");
    var box = form.querySelector("textarea");
    if (error && box) box.focus();
  });
})();
