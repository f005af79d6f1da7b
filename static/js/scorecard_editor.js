// Scorecard editor: show the parameters of the chosen scoring function, the metric input of a usage
// signal, and recompute each component's share as weights are typed. The page works without this file
// (every change is also applied by the server on Preview).
(function () {
  "use strict";
  var form = document.querySelector(".sc-editor");
  if (!form) return;

  function number(input) {
    if (!input) return null;
    var text = input.value.trim().replace(",", ".");
    if (text === "") return null;
    var value = Number(text);
    return isFinite(value) && value >= 0 ? value : null;
  }

  function showFunction(row) {
    var type = row.querySelector("[data-type-select]").value;
    row.querySelectorAll("[data-fn]").forEach(function (box) {
      box.hidden = box.getAttribute("data-fn") !== type;
    });
  }

  function showSignal(row) {
    var signal = row.querySelector("[data-signal-select]").value;
    row.querySelectorAll("[data-show-for-signal]").forEach(function (box) {
      var wanted = box.getAttribute("data-show-for-signal");
      var keep = box.querySelector("input") && box.querySelector("input").value.trim() !== "";
      box.hidden = !(wanted === signal || (wanted === "support" && keep));
    });
  }

  // Two levels, as health.scoring: a group's weight is split among its components by their weights.
  function shares() {
    var groupWeight = {};
    form.querySelectorAll("[data-group-weight]").forEach(function (input) {
      var i = input.id.split("-")[1];
      var key = (form.querySelector("#groups-" + i + "-key") || {}).value || "";
      if (key) groupWeight[key] = number(input) || 0;
    });
    var rows = Array.prototype.slice.call(form.querySelectorAll("tr[data-component]"));
    var members = {};
    var top = 0;
    var data = rows.map(function (row) {
      var w = number(row.querySelector("[data-weight]"));
      var group = row.querySelector("select[id$='-group']").value;
      if (w !== null) {
        if (group) members[group] = (members[group] || 0) + w;
        else top += w;
      }
      return { row: row, w: w, group: group };
    });
    Object.keys(members).forEach(function (g) {
      if (members[g] > 0) top += groupWeight[g] || 0;
    });
    data.forEach(function (d) {
      var cell = d.row.querySelector("[data-share]");
      if (d.w === null || top <= 0) {
        cell.textContent = "—";
        return;
      }
      var share = d.group
        ? members[d.group] > 0 ? ((groupWeight[d.group] || 0) / top) * (d.w / members[d.group]) * 100 : 0
        : (d.w / top) * 100;
      cell.textContent = share.toFixed(1) + "%";
    });
  }

  form.querySelectorAll("tr[data-component]").forEach(function (row) {
    showFunction(row);
    showSignal(row);
  });
  form.addEventListener("change", function (event) {
    var row = event.target.closest("tr[data-component]");
    if (row && event.target.matches("[data-type-select]")) showFunction(row);
    if (row && event.target.matches("[data-signal-select]")) showSignal(row);
    shares();
  });
  form.addEventListener("input", function (event) {
    if (event.target.matches("[data-weight], [data-group-weight]")) shares();
  });
})();
