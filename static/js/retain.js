// Retain: small progressive enhancements. Every page works without this file; with it, the phone menu
// collapses, wide tables become keyboard-reachable scroll regions and focus goes where the user's eyes are.
// No inline script anywhere (the Content-Security-Policy forbids it): behaviour hangs off data attributes.
(function () {
  "use strict";

  var FOCUS_KEY = "retain:focus";

  function visibleText(el) {
    // The label a user sees, without aria-hidden decorations such as the sort marks.
    var clone = el.cloneNode(true);
    clone.querySelectorAll("[aria-hidden='true']").forEach(function (n) { n.remove(); });
    return clone.textContent.replace(/\s+/g, " ").trim();
  }

  // --- "/" focuses the search box of the page (the filter search on lists, else the top search) -------------
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

  // --- Confirm before a destructive form (data-confirm="…"; was an inline onsubmit, which the CSP forbids) -----
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // --- Phone navigation: a menu button that shows and hides the navigation panel --------------------------
  function setMenu(open, focusButton) {
    var button = document.querySelector("[data-menu-button]");
    var sidebar = document.getElementById("sidebar");
    if (!button || !sidebar) return;
    button.setAttribute("aria-expanded", open ? "true" : "false");
    sidebar.classList.toggle("nav-open", open);
    if (focusButton) button.focus();
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-menu-button]");
    if (!button) return;
    var open = button.getAttribute("aria-expanded") !== "true";
    setMenu(open, false);
    if (open) {
      var first = document.querySelector("#nav-panel a, #nav-panel summary");
      if (first) first.focus();
    }
  });

  // --- Escape closes what is open: the organization switcher, the help menu, the phone menu ----------------
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.org-switcher[open], details.help-menu[open]").forEach(function (d) {
      d.removeAttribute("open");
      d.querySelector("summary").focus();
    });
    var button = document.querySelector("[data-menu-button][aria-expanded='true']");
    if (button) setMenu(false, true);
  });

  // --- Wide tables: scroll inside their card, reachable by keyboard when they do scroll ---------------------
  function regionLabel(scroller) {
    var table = scroller.querySelector("table");
    var caption = table && table.querySelector("caption");
    if (table && table.getAttribute("aria-label")) return table.getAttribute("aria-label");
    if (caption) return visibleText(caption);
    var section = scroller.closest("section, details, main");
    var heading = section && section.querySelector("h1, h2, h3, summary");
    return (heading ? visibleText(heading) : "Table") + " (table, scrolls sideways)";
  }
  function markScrollRegions() {
    // Tables a template did not wrap get a wrapper, so the table keeps its own semantics.
    document.querySelectorAll("main table.data").forEach(function (table) {
      var parent = table.parentElement;
      if (parent.classList.contains("table-wrap") || parent.classList.contains("table-scroll")) return;
      var wrap = document.createElement("div");
      wrap.className = "table-scroll";
      parent.insertBefore(wrap, table);
      wrap.appendChild(table);
    });
    document.querySelectorAll("main .table-wrap, main .table-scroll").forEach(function (scroller) {
      var scrolls = scroller.scrollWidth > scroller.clientWidth + 1;
      if (scrolls) {
        // A region the keyboard can scroll: focusable, named, announced as a region.
        scroller.setAttribute("tabindex", "0");
        scroller.setAttribute("role", "region");
        if (!scroller.hasAttribute("aria-label") && !scroller.hasAttribute("aria-labelledby")) {
          scroller.setAttribute("aria-label", regionLabel(scroller));
          scroller.setAttribute("data-auto-label", "");
        }
      } else if (scroller.getAttribute("tabindex") === "0" && !scroller.hasAttribute("data-always-region")) {
        // Not scrolling at this width: no useless tab stop.
        scroller.removeAttribute("tabindex");
        scroller.removeAttribute("role");
        if (scroller.hasAttribute("data-auto-label")) {
          scroller.removeAttribute("aria-label");
          scroller.removeAttribute("data-auto-label");
        }
      }
    });
  }

  // --- Focus after a page load: the first error at its field, else the confirmation, else where it was -----
  function focusAndShow(el) {
    if (!el) return false;
    if (!el.matches("a, button, input, select, textarea, summary, [tabindex]")) el.setAttribute("tabindex", "-1");
    el.focus({ preventScroll: true });
    // scroll-margin-top (CSS) keeps it clear of the sticky header.
    el.scrollIntoView({ block: "center" });
    return document.activeElement === el;
  }
  function firstError(root) {
    var field = root.querySelector(
      ".has-error input:not([type=hidden]), .has-error select, .has-error textarea, [aria-invalid='true']"
    );
    if (field) return field;
    var message = root.querySelector(".field-error, .form-error");
    if (!message) return null;
    // A message under its field: focus the field it belongs to.
    var holder = message.closest(".field, td, .f");
    var input = holder && holder.querySelector("input:not([type=hidden]), select, textarea");
    return input || message;
  }
  function describeFocus(el) {
    var holder = el.closest("[id], [aria-label], [data-testid]");
    var where = holder ? holder.id || holder.getAttribute("aria-label") || holder.getAttribute("data-testid") : "";
    return where + "|" + el.tagName + "|" + (el.name || visibleText(el));
  }
  function rememberFocus(el) {
    try {
      sessionStorage.setItem(FOCUS_KEY, JSON.stringify({ path: location.pathname, key: describeFocus(el) }));
    } catch (e) { /* storage disabled: focus simply starts at the top */ }
  }
  function restoreFocus() {
    var saved;
    try {
      saved = JSON.parse(sessionStorage.getItem(FOCUS_KEY) || "null");
      sessionStorage.removeItem(FOCUS_KEY);
    } catch (e) { return false; }
    if (!saved || saved.path !== location.pathname) return false;
    var candidates = document.querySelectorAll("main a, main button, main input, main select, main summary");
    for (var i = 0; i < candidates.length; i++) {
      if (describeFocus(candidates[i]) === saved.key) {
        candidates[i].focus();
        return true;
      }
    }
    // The same control is gone (e.g. a filter that hid the table): land on the page's title, not on body.
    var title = document.querySelector("main h1");
    return focusAndShow(title);
  }
  // Sorting, paging, the Mine/All and period toggles and GET filter forms reload the page: remember the control.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest(
      "main th a, main .seg-toggle a, main .pager a, main .tabs a, main [data-keep-focus]"
    );
    if (link) rememberFocus(link);
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if ((form.getAttribute("method") || "get").toLowerCase() !== "get" || !form.closest("main")) return;
    rememberFocus(event.submitter || form.querySelector("button, input[type=submit]") || form);
  });

  function placeFocus() {
    var main = document.querySelector("main");
    if (!main) return;
    if (focusAndShow(firstError(main))) return;
    if (focusAndShow(document.querySelector("[data-confirmation]"))) return;
    restoreFocus();
  }
  function onLoad() {
    markScrollRegions();
    if (!location.hash) {
      placeFocus();
      return;
    }
    // A URL with a #fragment (a save that returns to "#health"): Chromium scrolls to the fragment after the
    // load and clears focus doing so, so focus is placed once that is done.
    window.addEventListener("load", function () { setTimeout(placeFocus, 0); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", onLoad);
  else onLoad();
  var resizeTimer;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(markScrollRegions, 150);
  });

  // --- htmx swaps (logging an activity): focus the first error, else the confirmation -----------------------
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    var source = event.detail.requestConfig && event.detail.requestConfig.elt;
    markScrollRegions();
    // Only a form the user submitted moves focus; polling panels (a job run's progress) never steal it.
    if (!target || !source || source.tagName !== "FORM") return;
    if (focusAndShow(firstError(target))) return;
    focusAndShow(target.querySelector("[role='status'], [data-confirmation]"));
  });
})();
