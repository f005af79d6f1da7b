// Playbook editor: show only the parameters of the chosen trigger and the fields of each action's chosen
// kind, open. The page works without this file: every group is a <details> the reader can open, and the
// server reads only the chosen trigger's and kind's fields.
(function () {
  "use strict";
  var form = document.querySelector(".pb-editor");
  if (!form) return;

  function sync(select, attribute, scope) {
    scope.querySelectorAll("[" + attribute + "]").forEach(function (box) {
      var chosen = box.getAttribute(attribute) === select.value;
      box.hidden = !chosen;
      box.open = chosen;
    });
  }

  var trigger = form.querySelector("select[name=trigger]");
  if (trigger) {
    sync(trigger, "data-trigger", form);
    trigger.addEventListener("change", function () { sync(trigger, "data-trigger", form); });
  }
  form.querySelectorAll(".pb-action").forEach(function (action) {
    var kind = action.querySelector("select[name$='-kind']");
    if (!kind) return;
    sync(kind, "data-action-kind", action);
    kind.addEventListener("change", function () { sync(kind, "data-action-kind", action); });
  });
})();
