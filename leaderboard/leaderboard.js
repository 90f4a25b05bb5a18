// Leaderboard page: sortable tables (click a header; numbers by their data-value, text by name)
// and model cards that open when a link points at them.
(function () {
  "use strict";
  function key(cell) {
    var el = cell.querySelector("[data-value]");
    if (el === null) { return cell.textContent.trim().toLowerCase(); }
    var v = el.getAttribute("data-value");
    if (v === "") { return null; }
    var f = parseFloat(v);
    return isNaN(f) ? v : f;
  }
  function sortBy(table, col, th) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.getAttribute("aria-sort") !== "ascending";
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === null && y === null) { return 0; }
      if (x === null) { return 1; }   // missing values always last
      if (y === null) { return -1; }
      var c = x < y ? -1 : (x > y ? 1 : 0);
      return asc ? c : -c;
    });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.lb").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener("click", function (ev) {
        if (ev.target.closest("a")) { return; }  // the header's link opens the metric card
        sortBy(table, col, th);
      });
    });
  });
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id ? document.getElementById(id) : null;
    if (el && el.tagName === "DETAILS") { el.open = true; el.scrollIntoView(); }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
})();
