// The data set page's chart: the aggregated values of the temporal API (NGSI-LD 1.8
// §6.19.3.1, options=aggregatedValues) at #chart's data-src, drawn with uPlot. htmx swaps the
// chart section when the reader picks another period; the chart is drawn again then.
(function () {
  "use strict";
  var plot = null;
  function draw() {
    var figure = document.getElementById("chart");
    if (!figure || typeof uPlot === "undefined") { return; }
    var status = figure.querySelector(".chart-status");
    var attr = figure.getAttribute("data-attr");
    var method = figure.getAttribute("data-aggr");
    if (plot) { plot.destroy(); plot = null; }
    fetch(figure.getAttribute("data-src"), { headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (entity) {
        var rows = (entity[attr] && entity[attr][method]) || [];
        if (Array.isArray(entity[attr])) { rows = (entity[attr][0] && entity[attr][0][method]) || []; }
        var xs = [], ys = [];
        rows.forEach(function (row) {
          if (row[0] === null || row[0] === undefined) { return; }
          xs.push(Date.parse(row[1]) / 1000);
          ys.push(row[0]);
        });
        if (!xs.length) { status.textContent = figure.getAttribute("data-empty"); return; }
        status.textContent = "";
        var width = Math.max(280, figure.clientWidth || 600);
        plot = new uPlot({
          width: width, height: 300,
          series: [{}, { label: attr, stroke: "#1d70b8", width: 2, fill: "rgba(29,112,184,0.08)" }],
          axes: [{}, {}], legend: { show: false }
        }, [xs, ys], figure);
        plot.root.setAttribute("aria-hidden", "true");
        var summary = document.createElement("p");
        summary.className = "visually-hidden";
        summary.textContent = attr + ": " + ys.length + " × " + method + ", min " +
          Math.min.apply(null, ys) + ", max " + Math.max.apply(null, ys);
        figure.appendChild(summary);
        figure.setAttribute("data-points", String(xs.length));
      })
      .catch(function () { status.textContent = figure.getAttribute("data-failed"); });
  }
  document.addEventListener("htmx:afterSettle", draw);
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
