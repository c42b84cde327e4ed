// Conveniences only: every page works without this file.
// Loaded before the body so the bulk page's progress bar follows rows as they stream in.
(function () {
  "use strict";
  function followBulkProgress() {
    var seen = 0;
    new MutationObserver(function () {
      var bar = document.querySelector("progress.bulk-progress");
      if (!bar) return;
      var rows = document.querySelectorAll("li.bulk-result").length;
      if (rows !== seen) {
        seen = rows;
        bar.value = rows;
        bar.textContent = rows + " of " + bar.max;
      }
    }).observe(document.documentElement, { childList: true, subtree: true });
  }
  function enableSelectAll() {
    document.querySelectorAll("input.select-all").forEach(function (box) {
      var table = box.closest("table");
      box.hidden = false;
      box.addEventListener("change", function () {
        table.querySelectorAll("tbody input[type=checkbox]").forEach(function (row) { row.checked = box.checked; });
      });
    });
  }
  function autoSubmitFilters() {
    document.querySelectorAll("form.filters select").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }
  followBulkProgress();
  document.addEventListener("DOMContentLoaded", function () {
    enableSelectAll();
    autoSubmitFilters();
  });
})();
