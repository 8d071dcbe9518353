// The dashboard's live values: Server-Sent Events of /live/entities (docs/live-streams.md),
// keyValues; each event replaces the numbers of its entity's table. EventSource reconnects by
// itself and resumes with Last-Event-ID.
(function () {
  "use strict";
  function start() {
    var box = document.getElementById("live");
    if (!box || typeof EventSource === "undefined") { return; }
    var lang = document.documentElement.lang || "nl";
    var format = new Intl.NumberFormat(lang === "nl" ? "nl-BE" : "en-GB", { maximumFractionDigits: 2 });
    var status = document.getElementById("live-status");
    var source = new EventSource(box.getAttribute("data-src"));
    source.addEventListener("entity", function (event) {
      var entity = JSON.parse(event.data);
      var tables = box.querySelectorAll("table[data-entity]");
      tables.forEach(function (table) {
        if (table.getAttribute("data-entity") !== entity.id) { return; }
        table.querySelectorAll("[data-attr]").forEach(function (cell) {
          var value = entity[cell.getAttribute("data-attr")];
          if (typeof value === "number") {
            var text = format.format(value);
            if (cell.textContent !== text) {
              cell.textContent = text;
              cell.classList.add("updated");
              if (status) { status.textContent = table.caption ? table.caption.textContent : entity.id; }
            }
          }
        });
      });
    });
    box.setAttribute("data-live", "open");
    source.addEventListener("open", function () { box.setAttribute("data-live", "connected"); });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
