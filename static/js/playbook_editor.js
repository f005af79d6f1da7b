// Playbook editor: open the parameters of the chosen trigger and the fields of each action's chosen kind,
// close the others. The page works without this file: every group is a <details> the reader can open, and
// the server reads only the chosen trigger's and kind's fields.
(function () {
  "use strict";
  var form = document.querySelector(".pb-editor");
  if (!form) return;

  function sync(select, attribute, scope) {
    scope.querySelectorAll("[" + attribute + "]").forEach(function (box) {
      box.open = box.getAttribute(attribute) === select.value;
    });
  }

  var trigger = form.querySelector("select[name=trigger]");
  if (trigger) {
    trigger.addEventListener("change", function () { sync(trigger, "data-trigger", form); });
  }
  form.querySelectorAll(".pb-action").forEach(function (action) {
    var kind = action.querySelector("select[name$='-kind']");
    if (kind) kind.addEventListener("change", function () { sync(kind, "data-action-kind", action); });
  });
})();
