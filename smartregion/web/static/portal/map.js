// The data set page's map: the sensors of the GeoJSON in #map-data, drawn with Leaflet.
// Without JavaScript the page lists the same sensors in tables.
(function () {
  "use strict";
  function start() {
    var element = document.getElementById("map");
    var source = document.getElementById("map-data");
    if (!element || !source || typeof L === "undefined") { return; }
    var data = JSON.parse(source.textContent || "{}");
    var map = L.map(element, { scrollWheelZoom: false });
    var tiles = element.getAttribute("data-tiles");
    if (tiles) {
      L.tileLayer(tiles, { maxZoom: 18, attribution: "&copy; OpenStreetMap" }).addTo(map);
    }
    var layer = L.geoJSON(data, {
      onEachFeature: function (feature, item) {
        var name = (feature.properties && feature.properties.name) || feature.id;
        var box = document.createElement("div");
        var title = document.createElement("strong");
        title.textContent = name;
        box.appendChild(title);
        Object.keys(feature.properties || {}).forEach(function (key) {
          if (key === "id" || key === "name" || key === "type") { return; }
          var line = document.createElement("div");
          line.textContent = key + ": " + feature.properties[key];
          box.appendChild(line);
        });
        item.bindPopup(box);
        if (item.options) { item.options.alt = name; item.options.title = name; }
      }
    }).addTo(map);
    var bounds = layer.getBounds();
    if (bounds.isValid()) { map.fitBounds(bounds, { padding: [20, 20] }); } else { map.setView([51.0, 4.4], 8); }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
